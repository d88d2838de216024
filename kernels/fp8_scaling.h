/* TransformerEngine's DelayedScaling recipe, exactly (DESIGN.md §4), on host arrays: the reference
 * of the fused CUDA update and what the CPU backend runs.
 *
 * Each FP8 tensor t (a GEMM operand: input or weight in E4M3, gradient in E5M2) has an amax
 * history of `len` slots, scale[t] and scale_inv[t]. The history is stored [len][count], slot 0 of
 * every tensor contiguous (TE's layout), so one all-reduce covers all slot-0 values. Casts record
 * the pre-scale amax in slot 0. After the forward (forward tensors) or the backward (gradient
 * tensors), in training only:
 *   a = the slot-0 value after the MAX all-reduce over the tp x dp group (reduced[t]; where it is 0,
 *       the local slot 0), and a tensor with a == 0 (not cast since the last update) is left alone
 *   amax = max(old[1..len-1], a) for "max" (a replaces old slot 0), a for "most_recent"
 *   roll: new[i] = old[i+1] (i < len-1), new[len-1] = a, then new[0] = 0
 *   scale = fp8_max * 2^-margin / amax if amax is finite and > 0, else the old scale;
 *   an infinite scale becomes FLT_MAX; scale_inv = 1 / scale. */
#ifndef GT_FP8_SCALING_H
#define GT_FP8_SCALING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GT_AMAX_MAX = 0, GT_AMAX_MOST_RECENT } gt_amax_algo;

typedef struct {
    int history_len; /* default 1024 (Megatron: 1 with most_recent) */
    gt_amax_algo algo;
    float margin;
    int lm_head; /* the lm_head GEMMs in FP8 too (default 0: BF16, as TransformerEngine users keep it) */
} gt_fp8_recipe;

/* Updates tensors [first, first + n) of `count`; reduced[count] may be NULL. */
void gt_fp8_update_arrays(float *history, float *scale, float *scale_inv, const float *fp8_max,
                          const float *reduced, int first, int n, int count, int len,
                          gt_amax_algo algo, float margin);

#ifdef __cplusplus
}
#endif

#endif
