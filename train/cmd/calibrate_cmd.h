/* `gemmatron calibrate`: an HF model and its FP8 delayed-scaling state, calibrated on a token file. */
#ifndef GT_CALIBRATE_H
#define GT_CALIBRATE_H

#include "cli.h"

/* Its options, usage and help (train/cmd/cli.h). */
extern const gt_cli_cmd gt_calibrate_cli;
int gt_cmd_calibrate(int argc, char **argv);

#endif
