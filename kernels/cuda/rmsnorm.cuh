/* The RMSNorm forward's element math, shared by rmsnorm_fwd (rmsnorm.cu) and the fused RMSNorm +
 * FP8 cast (rmsnorm_fp8.cu): the fused op must equal rmsnorm_fwd followed by fp8_cast bit for bit,
 * so both compile this one expression (same fp32 operations in the same order; nothing here can be
 * contracted into an FMA), and both take rstd from the same row kernel (gt_cuda_rmsnorm_rstd).
 *
 * As HF's GemmaRMSNorm: y = (x * rstd) * (1 + w) in fp32 on the bf16 x and w, rounded to bf16 once
 * by the caller (nearest even). */
#ifndef GT_RMSNORM_CUH
#define GT_RMSNORM_CUH

#include "cuda_common.cuh"

/* One element of y before its bf16 rounding. */
static __device__ __forceinline__ float gt_rmsnorm1(float x, float rstd, float w) {
    return (x * rstd) * (1.0f + w);
}

/* The sum of squares of one row over 8 consecutive elements at a time: ss += f[j] * f[j], j = 0..7.
 * rmsnorm_fwd's row kernel and the fused residual add + norm (rmsnorm.cu) both accumulate through
 * this, in the same lane order, so their rstd agree bit for bit. */
static __device__ __forceinline__ float gt_rmsnorm_sumsq8(float ss, const float f[8]) {
#pragma unroll
    for (int j = 0; j < 8; j++) ss += f[j] * f[j];
    return ss;
}

/* rstd[N] of x[N, C] (bf16) as rmsnorm_fwd computes it, and nothing else: its row kernel with no
 * output (rmsnorm.cu). The first pass of rmsnorm_fwd_fp8. */
void gt_cuda_rmsnorm_rstd(gt_backend *be, float *rstd, const void *x, float eps, int N, int C);

/* res[N, C] = a + b and rstd[N] of res, as add then gt_cuda_rmsnorm_rstd compute them (the fused
 * residual add of rmsnorm.cu without the norm's output). The first pass of add_rmsnorm_fwd_fp8. */
void gt_cuda_add_rmsnorm_rstd(gt_backend *be, void *res, float *rstd, const void *a, const void *b,
                              float eps, int N, int C);

#endif
