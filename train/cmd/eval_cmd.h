/* `gemmatron eval`: mean next-token loss of a model on a token file. */
#ifndef GT_EVAL_H
#define GT_EVAL_H

#include "cli.h"

/* Its options, usage and help (train/cmd/cli.h). */
extern const gt_cli_cmd gt_eval_cli;
int gt_cmd_eval(int argc, char **argv);

#endif
