/* gemmatron export: a checkpoint (or any HF Gemma directory) as a plain HF model directory. */
#ifndef GT_EXPORT_CMD_H
#define GT_EXPORT_CMD_H

#include "cli.h"

/* Its options, usage and help (train/cmd/cli.h). */
extern const gt_cli_cmd gt_export_cli;
int gt_cmd_export(int argc, char **argv);

#endif
