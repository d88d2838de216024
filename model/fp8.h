/* FP8 training of the model's four GEMMs per layer (QKV, o_proj, fc1, fc2) with TransformerEngine's
 * delayed scaling (DESIGN.md §4; kernels/fp8_scaling.h). lm_head and the embedding stay BF16.
 *
 * Scaling tensors, count = 12 L, ordered so that forward and gradient tensors are contiguous:
 *   forward  t = (l*4 + g)*2 + 0   GEMM g's input       E4M3
 *            t = (l*4 + g)*2 + 1   GEMM g's weight      E4M3
 *   gradient t = 8L + l*4 + g      GEMM g's grad_output E5M2
 * Per GEMM: W8 [OC, IC] and W8T [IC, OC] (cast once after each optimizer step), the input's
 * transposed FP8 copy x8T [IC, N] kept for the weight gradient, and scratch for x8, dy8, dy8T.
 * A GEMM whose sizes are not multiples of 16 (cuBLASLt's FP8 requirement) runs in BF16. */
#ifndef GT_MODEL_FP8_H
#define GT_MODEL_FP8_H

#include "../kernels/fp8_scaling.h"
#include "model.h"

enum { GT_GEMM_QKV = 0, GT_GEMM_O, GT_GEMM_FC1, GT_GEMM_FC2, GT_GEMMS };

typedef struct gt_fp8 {
    gt_fp8_recipe recipe;
    int count, len;
    float *history;   /* [len][count] device */
    float *scale, *scale_inv, *fp8_max; /* [count] device */
    float *reduced;   /* [count] device: all-reduced slot 0 */
    float *eval_amax; /* [1] device: where casts outside training record (ignored) */
    float *w_sinv;    /* [8L] scale_inv as of the weights' cast (weight entries used) */
    float *x_sinv;    /* [8L] scale_inv as of the last forward (input entries used by backward) */
    int *fp8_used;    /* [L*4] the last forward ran GEMM (l, g) in FP8 */
    gt_group *amax_group; /* tp x dp: the MAX reduction of amaxes (NULL: one process) */
    void **w8, **w8t;     /* [L*4] FP8 weights and their transposes */
    void **x8t;           /* [L*4] inputs' transposed FP8 copies, [IC, N] */
    void *x8, *dy8, *dy8t; /* scratch, largest GEMM */
    int weights_stale;    /* cast the weights before the next forward */
    int calibrating;      /* BF16 GEMMs that only record amaxes */
    int n_tokens;         /* N the activation copies are sized for */
} gt_fp8;

/* Turns FP8 on for the model's GEMMs. amax_group: the whole tp x dp world (NULL: one process). */
void gt_model_enable_fp8(gt_model *m, const gt_fp8_recipe *r, gt_group *amax_group);
void gt_model_fp8_free(gt_model *m);
/* Calibration: BF16 forwards that record amaxes and update the scales (training must be set). */
void gt_model_fp8_calibrate(gt_model *m, int on);
/* The parameters changed (an optimizer step, a load): recast the FP8 weights before use. */
void gt_model_fp8_weights_changed(gt_model *m);

/* y[N,OC] = x[N,IC] W^T of GEMM g of layer l, in FP8 when enabled and possible. train: record the
 * input's amax and keep x8T for the backward. */
void gt_linear_fwd(gt_model *m, int l, int g, void *y, const void *x, size_t w_off, int N, int IC,
                   int OC, int train);
/* dx (may be NULL) and dW += of the same GEMM. */
void gt_linear_bwd(gt_model *m, int l, int g, void *dx, const void *dy, const void *x, size_t w_off,
                   int N, int IC, int OC);
/* The scale updates after a training forward (forward tensors) or backward (gradient tensors). */
void gt_model_fp8_after_forward(gt_model *m);
void gt_model_fp8_after_backward(gt_model *m);

#endif
