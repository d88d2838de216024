/* `gemmatron generate`: text (or token ids) from a model with a KV cache (model/decoder.h). */
#ifndef GT_GENERATE_CMD_H
#define GT_GENERATE_CMD_H

#include "cli.h"

extern const gt_cli_cmd gt_generate_cli;
int gt_cmd_generate(int argc, char **argv);

#endif
