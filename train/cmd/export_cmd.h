/* gemmatron export: a checkpoint (or any HF Gemma directory) as a plain HF model directory. */
#ifndef GT_EXPORT_CMD_H
#define GT_EXPORT_CMD_H

int gt_cmd_export(int argc, char **argv);

#endif
