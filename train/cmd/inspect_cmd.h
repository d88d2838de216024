/* gemmatron inspect: a readable summary of a checkpoint, HF model or run directory. */
#ifndef GT_INSPECT_CMD_H
#define GT_INSPECT_CMD_H

#include "cli.h"

/* Its options, usage and help (train/cmd/cli.h). */
extern const gt_cli_cmd gt_inspect_cli;
int gt_cmd_inspect(int argc, char **argv);

#endif
