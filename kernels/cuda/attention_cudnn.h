/* cuDNN's fused attention (SDPA) behind a C interface, used by the CUDA backend's attention_fwd and
 * attention_bwd (kernels/ops.h has their contract) for every case cuDNN accepts; the built-in
 * kernels (attention_fwd.cu, attention_bwd.cu) run the rest.
 *
 * The build picks one of two implementations: attention_cudnn.cu (cuDNN and cudnn-frontend were
 * found at configure time: GT_HAVE_CUDNN) or attention_cudnn_off.cu (no cuDNN: every call declines).
 *
 * Plans are built once per shape (B, T, Hq, Hkv, D, scale), forward and backward together, and
 * cached; a shape cuDNN refuses is remembered as refused, with a one-line note, so forward and
 * backward of one shape always run in the same implementation (their lse must agree). */
#ifndef GT_ATTENTION_CUDNN_H
#define GT_ATTENTION_CUDNN_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_cudnn_attn gt_cudnn_attn;

/* NULL when cuDNN cannot be used (not built in, too old at run time, or switched off with
 * GT_CUDNN_ATTENTION=0), after a one-line note on rank 0 where that is not the user's choice.
 * deterministic: the backward gives bitwise the same gradients for the same inputs
 * (GT_CUDNN_DETERMINISTIC=0 lets cuDNN pick faster, non-deterministic plans). */
gt_cudnn_attn *gt_cudnn_attn_create(cudaStream_t stream);
void gt_cudnn_attn_destroy(gt_cudnn_attn *a);
/* The cuDNN version at run time (e.g. 91900), or 0 when none is used. */
int gt_cudnn_attn_version(const gt_cudnn_attn *a);

/* 1 when cuDNN runs this shape (building its plans if this is the first time it is seen). */
int gt_cudnn_attn_supports(gt_cudnn_attn *a, float scale, int B, int T, int Hq, int Hkv, int D);
/* Return 1 when cuDNN ran the op, 0 when the caller must run it (a NULL a, a segment mask, or a
 * shape cuDNN refuses). Arguments as gt_ops.attention_fwd / attention_bwd, without seg. */
int gt_cudnn_attn_fwd(gt_cudnn_attn *a, void *out, void *lse, const void *qkv, float scale, int B,
                      int T, int Hq, int Hkv, int D);
int gt_cudnn_attn_bwd(gt_cudnn_attn *a, void *dqkv, const void *dout, const void *qkv,
                      const void *out, const void *lse, float scale, int B, int T, int Hq, int Hkv,
                      int D);

#ifdef __cplusplus
}
#endif

#endif
