/* `gemmatron train`: fine-tunes (or trains from scratch) a Gemma model from a YAML run config. */
#ifndef GT_TRAIN_CMD_H
#define GT_TRAIN_CMD_H

int gt_cmd_train(int argc, char **argv);

#endif
