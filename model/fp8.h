/* FP8 training of the model's four GEMMs per layer (QKV, o_proj, fc1, fc2; run by model/linear.c)
 * with TransformerEngine's delayed scaling (DESIGN.md §4; kernels/fp8_scaling.h), and optionally
 * of the lm_head (recipe.lm_head). The embedding lookup stays BF16.
 *
 * GEMM slots s = l*4 + g (g: enum below); the lm_head is slot 4 L, called as GEMM 0 of "layer L".
 * S slots (4 L, or 4 L + 1 with the lm_head), count = 3 S scaling tensors, ordered so that forward
 * and gradient tensors are contiguous:
 *   forward  t = 2 s       GEMM s's input        E4M3
 *            t = 2 s + 1   GEMM s's weight       E4M3
 *   gradient t = 2 S + s   GEMM s's grad_output  E5M2
 * (without the lm_head: the layers' inputs and weights 0..8L-1, their gradients 8L..12L-1).
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
    int slots, count, len; /* S GEMM slots, 3 S tensors, history length */
    float *history;   /* [len][count] device */
    float *scale, *scale_inv, *fp8_max; /* [count] device */
    float *reduced;   /* [count] device: all-reduced slot 0 */
    float *eval_amax; /* [1] device: where casts outside training record (ignored) */
    float *w_sinv;    /* [2S] scale_inv as of the weights' cast (weight entries used) */
    float *x_sinv;    /* [2S] scale_inv as of the training forward (input entries used by backward) */
    int *fp8_used;    /* [S] the last forward ran GEMM s in FP8 */
    gt_group *amax_group; /* tp x dp: the MAX reduction of amaxes (NULL: one process) */
    void **w8, **w8t;     /* [S] FP8 weights and their transposes */
    void **x8t;           /* [S] inputs' transposed FP8 copies, [IC, N] */
    void *x8, *dy8, *dy8t; /* scratch, largest GEMM */
    int weights_stale;    /* cast the weights before the next forward */
    int calibrating;      /* BF16 GEMMs that only record amaxes */
    int n_tokens;         /* N the activation copies are sized for */
    int infer_rows;       /* > 0: inference (gt_model_fp8_inference): x8 holds this many rows */
} gt_fp8;

/* Turns FP8 on for the model's GEMMs. amax_group: the whole tp x dp world (NULL: one process). */
/* Bytes the FP8 state of m's layout takes (*state: the weights' FP8 copies and the scaling
 * arrays, made by gt_model_enable_fp8) and its operands for micro-batches of N tokens (*acts:
 * gt_model_fp8_size_acts; m->ce_chunk set): the same computation as the allocations, for the
 * memory plan. */
void gt_model_fp8_bytes(const gt_model *m, int lm_head, int history_len, int N, size_t *state, size_t *acts);
void gt_model_enable_fp8(gt_model *m, const gt_fp8_recipe *r, gt_group *amax_group);
void gt_model_fp8_free(gt_model *m);
/* Calibration: BF16 forwards that record amaxes and update the scales (training must be set). */
void gt_model_fp8_calibrate(gt_model *m, int on);
/* Inference with the state as it is (generation from a calibrated directory): the weights are
 * cast once now with their scales (their transposes, only the backward's, are freed), and every
 * later forward casts its inputs with the input scales into one x8 of max_rows rows, allocated
 * here: no forward allocates (a CUDA graph may capture it), and none records an amax into the
 * histories or updates a scale, so every scale stays the loaded one. Training forwards and
 * backwards are refused from then on. A later call for no more rows keeps x8; for more, it
 * replaces it (a decoder made before then must not run again). */
void gt_model_fp8_inference(gt_model *m, int max_rows);
/* The parameters changed (an optimizer step, a load): recast the FP8 weights before use. */
void gt_model_fp8_weights_changed(gt_model *m);

/* Tensors of GEMM slot s: forward 2s (input) and 2s + 1 (weight), gradient 2 S + s. */
static inline int gt_fp8_t_in(int s) { return 2 * s; }
static inline int gt_fp8_t_w(int s) { return 2 * s + 1; }
static inline int gt_fp8_t_grad(const gt_fp8 *f, int s) { return 2 * f->slots + s; }

/* For model/linear.c: sizes the activation copies and scratch for micro-batches of N tokens (a
 * no-op when they already are), and casts every FP8 weight and its transpose with the current
 * weight scales (train: recording their amax), keeping the scale_inv they were cast with. */
void gt_model_fp8_size_acts(gt_model *m, int N);
void gt_model_fp8_cast_weights(gt_model *m, int train);

/* Before a training forward: keep the scales its input casts use for the backward. After a training
 * forward (forward tensors) or backward (gradient tensors): the scale updates. */
void gt_model_fp8_before_forward(gt_model *m);
void gt_model_fp8_after_forward(gt_model *m);
void gt_model_fp8_after_backward(gt_model *m);

#endif
