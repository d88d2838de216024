/* The FP8 delayed-scaling state of a model (model/fp8.h) seen from the host: the names of its
 * tensors, and copies of its arrays to and from host memory, for checkpoints and metrics.
 *
 * The state is the same on every rank once the amaxes are MAX-reduced over the tp x dp world, and
 * it does not depend on tp (every amax is that of the full tensor), so one copy describes the run
 * on any layout.
 *
 * Tensor names follow the order of model/fp8.h, "layers.<l>.<gemm>.<operand>" or "lm_head.<operand>":
 *   gemm     qkv, o_proj, fc1, fc2
 *   operand  input, weight (E4M3, forward), grad_output (E5M2, backward)
 * e.g. "layers.0.qkv.input" is tensor 0 and, without the lm_head, "layers.0.qkv.grad_output" is
 * tensor 8 L. */
#ifndef GT_MODEL_FP8_STATE_H
#define GT_MODEL_FP8_STATE_H

#include "fp8.h"

/* Longest tensor name, NUL included, for any layer count below a billion. */
#define GT_FP8_NAME_LEN 48

/* Host copy of the state: history[len][count] (slot 0 of every tensor first, as on the device),
 * scale, scale_inv and fp8_max[count]. */
typedef struct {
    int len, count;
    gt_fp8_recipe recipe;
    float *history, *scale, *scale_inv, *fp8_max;
} gt_fp8_host;

/* Name of tensor t of a state of `count` tensors (12 L, or 12 L + 3 with the lm_head). */
void gt_fp8_tensor_name(int count, int t, char *buf, size_t len);

/* Allocates h for the model's state (len, count, recipe) without copying anything. */
void gt_fp8_host_alloc(const gt_model *m, gt_fp8_host *h);
void gt_fp8_host_free(gt_fp8_host *h);

/* The whole state, device to host (h allocated here; free with gt_fp8_host_free). */
void gt_fp8_download(const gt_model *m, gt_fp8_host *h);
/* Only what a metrics row needs: newest[t] = history slot len-1 of tensor t (the amax the last
 * update added; see gt_fp8_update_arrays), scale[t]. Both [count] host arrays. */
void gt_fp8_download_latest(const gt_model *m, float *newest, float *scale);

/* Replaces the model's history, scale and scale_inv with h's (same len and count: the caller
 * checks). The FP8 weight copies are recast with the new scales before the next forward. */
void gt_fp8_upload(gt_model *m, const gt_fp8_host *h);

#endif
