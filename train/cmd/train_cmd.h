/* `gemmatron train`: fine-tunes (or trains from scratch) a Gemma model from a YAML run config. */
#ifndef GT_TRAIN_CMD_H
#define GT_TRAIN_CMD_H

#include "cli.h"

/* Its options, usage and help (train/cmd/cli.h). */
extern const gt_cli_cmd gt_train_cli;
int gt_cmd_train(int argc, char **argv);

#endif
