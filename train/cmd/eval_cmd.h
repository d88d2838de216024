/* `gemmatron eval`: mean next-token loss of a model on a token file. */
#ifndef GT_EVAL_H
#define GT_EVAL_H

int gt_cmd_eval(int argc, char **argv);

#endif
