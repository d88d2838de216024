/* TransformerEngine's DelayedScaling recipe, exactly (DESIGN.md §4), on host arrays: the reference
 * of the fused CUDA update and the state the CPU backend uses.
 *
 * Each FP8 tensor t (a GEMM operand: input or weight in E4M3, gradient in E5M2) has
 * amax_history[t][len], scale[t] and scale_inv[t]. Casts record the pre-scale amax in slot 0. After
 * the forward (forward tensors) or the backward (gradient tensors), in training only:
 *   a = slot 0 after the MAX all-reduce over the tp x dp group (the caller's reduced value; when it is
 *       0 the local slot 0 is used, and when that is 0 too the tensor is left alone entirely)
 *   amax = max(old[1..len-1], a) for "max" (old[0] is the local value a replaces), a for
 *          "most_recent"
 *   roll: new[i] = old[i+1] (i < len-1), new[len-1] = a, then new[0] = 0
 *   scale = fp8_max * 2^-margin / amax if amax is finite and > 0, else the old scale;
 *   an infinite scale becomes FLT_MAX; scale_inv = 1 / scale. */
#ifndef GT_FP8_SCALING_H
#define GT_FP8_SCALING_H

#include <stddef.h>

typedef enum { GT_AMAX_MAX = 0, GT_AMAX_MOST_RECENT } gt_amax_algo;

typedef struct {
    int history_len; /* default 1024 (Megatron: 1 with most_recent) */
    gt_amax_algo algo;
    float margin;
} gt_fp8_recipe;

typedef struct {
    int count, len;
    float *history;   /* [count][len] */
    float *scale;     /* [count], initially 1 */
    float *scale_inv; /* [count], initially 1 */
    float *fp8_max;   /* [count]: 448 (E4M3) or 57344 (E5M2) */
} gt_fp8_state;

void gt_fp8_state_init(gt_fp8_state *s, int count, int len);
void gt_fp8_state_free(gt_fp8_state *s);
/* Updates tensors [first, first + n). reduced[n] (may be NULL): the all-reduced slot-0 amaxes. */
void gt_fp8_update(gt_fp8_state *s, const gt_fp8_recipe *r, const float *reduced, int first, int n);

#endif
