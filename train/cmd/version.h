/* `gemmatron --version` / `gemmatron version`: what this binary is and what it was built from. */
#ifndef GT_TRAIN_VERSION_H
#define GT_TRAIN_VERSION_H

#include "cli.h"

/* "gemmatron 0.1.0": the name and version recorded in metrics.h5 (the version is the project's, in
 * CMakeLists.txt). */
const char *gt_version_name(void);

extern const gt_cli_cmd gt_version_cli;
int gt_cmd_version(int argc, char **argv);

#endif
