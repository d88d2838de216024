/* `gemmatron bench`: times full training steps (forward, backward, gradient norm, AdamW). */
#ifndef GT_BENCH_H
#define GT_BENCH_H

int gt_cmd_bench(int argc, char **argv);

#endif
