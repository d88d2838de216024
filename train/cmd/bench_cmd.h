/* `gemmatron bench`: times full training steps (forward, backward, gradient norm, AdamW). */
#ifndef GT_BENCH_H
#define GT_BENCH_H

#include "cli.h"

/* Its options, usage and help (train/cmd/cli.h). */
extern const gt_cli_cmd gt_bench_cli;
int gt_cmd_bench(int argc, char **argv);

#endif
