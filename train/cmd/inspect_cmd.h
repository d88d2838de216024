/* gemmatron inspect: a readable summary of a checkpoint, HF model or run directory. */
#ifndef GT_INSPECT_CMD_H
#define GT_INSPECT_CMD_H

int gt_cmd_inspect(int argc, char **argv);

#endif
