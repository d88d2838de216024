/* The model's linear layers, y = x W^T: the four GEMMs of every layer (QKV, o_proj, fc1, fc2) and
 * the tied lm_head, each run in BF16 (gt_ops.matmul_fwd/bwd) or, with FP8 on (model/fp8.h) and
 * shapes FP8 can take, in FP8 (gt_ops.matmul_fp8) with delayed scaling. GEMM g of layer l is
 * slot l * GT_GEMMS + g; the lm_head is slot GT_GEMMS * L, called as GEMM 0 of "layer L". */
#ifndef GT_LINEAR_H
#define GT_LINEAR_H

#include "fp8.h"

/* Where a fused cast writes an FP8 operand: out [rows, cols], out_t [cols, rows] (NULL: not
 * needed), with scale[0], recording the pre-scale amax into amax[0]. */
typedef struct {
    void *x8, *x8t;
    const float *scale;
    float *amax;
} gt_fp8_target;

/* 1 when GEMM g of layer l will run in FP8 for N tokens, with *dst where its input's FP8 copies go:
 * the op producing the input may write them itself (a fused cast) and pass x = NULL to
 * gt_linear_fwd. 0: the GEMM runs in BF16 (FP8 off, calibrating, or a shape FP8 cannot take). */
int gt_linear_fp8_input(gt_model *m, int l, int g, int N, int train, gt_fp8_target *dst);
/* The same for the gradient of the GEMM's output in the backward (E5M2, dy8 and dy8T): 1 when the
 * last forward ran it in FP8; then dy = NULL to gt_linear_bwd means the caller cast it. */
int gt_linear_fp8_grad(gt_model *m, int l, int g, gt_fp8_target *dst);

/* y[N,OC] = x[N,IC] W^T of GEMM g of layer l, in FP8 when enabled and possible. train: record the
 * input's amax and keep x8T for the backward. x NULL: already cast (gt_linear_fp8_input). */
void gt_linear_fwd(gt_model *m, int l, int g, void *y, const void *x, size_t w_off, int N, int IC,
                   int OC, int train);
/* dx (may be NULL) and dW += of the same GEMM; dy NULL: already cast (gt_linear_fp8_grad). sum_dx:
 * dx is summed over tp (a column-parallel GEMM's input gradient), overlapped with the dW GEMM when
 * the model overlaps tp communication (gt_model_tp_sum_start). */
void gt_linear_bwd(gt_model *m, int l, int g, void *dx, const void *dy, const void *x, size_t w_off,
                   int N, int IC, int OC, int sum_dx);
/* The lm_head's vocabulary columns on this rank without the tp padding (its GEMM's OC). */
int gt_model_head_vocab(const gt_model *m);
/* Input and output widths of the GEMM in slot s, and its weight's offset in the parameters. */
void gt_linear_dims(const gt_model *m, int s, int *ic, int *oc, size_t *w_off);
/* 1 when GEMM slot s has widths FP8 takes (IC and OC multiples of 16; the rows are the caller's). */
int gt_linear_fp8_shape(const gt_model *m, int s);

#endif
