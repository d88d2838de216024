/* The GeGLU element math of Gemma's MLP, shared by the GeGLU kernels (geglu.cu) and the fused
 * GeGLU + FP8 cast kernels (geglu_fp8.cu): the fused ops must equal geglu_fwd/bwd followed by
 * fp8_cast bit for bit, so both compile this one code (same operations, same order, same FMA
 * contraction; everything here is fp32, rounded to bf16 by the caller).
 *
 * GELU as PyTorch computes it (fp32 math, one bf16 rounding per output element):
 *   tanh ("gelu_pytorch_tanh"): 0.5 x (1 + tanh(k0 (x + k1 x^3))), k0 = sqrt(2/pi), k1 = 0.044715
 *   erf  ("gelu"):              0.5 x (1 + erf(x / sqrt(2)))
 * Forward h = gelu(gate) * up; backward da_gate = dh * up * gelu'(gate), da_up = dh * gelu(gate).
 * --use_fast_math turns tanhf into tanh.approx (about 2^-11 relative error); tanh here is
 * 1 - 2 / (1 + exp(2u)) instead, accurate to ~1e-7 absolute, which is what gelu's (1 + t) needs. */
#ifndef GT_GELU_CUH
#define GT_GELU_CUH

#include "../ops.h"

#define GT_GELU_K0 0.7978845608028654f       /* sqrt(2 / pi) */
#define GT_GELU_K1 0.044715f
#define GT_GELU_RSQRT2 0.7071067811865476f   /* 1 / sqrt(2) */
#define GT_GELU_RSQRT2PI 0.3989422804014327f /* 1 / sqrt(2 pi) */

static __device__ __forceinline__ float gt_tanh_accurate(float u) {
    return 1.0f - __fdividef(2.0f, 1.0f + __expf(2.0f * u));
}

/* gelu(x) and, when d is not NULL, gelu'(x) into *d. kind is a compile-time constant in the fused
 * kernels (the branch folds) and a run-time one in geglu.cu: the arithmetic is the same. */
static __device__ __forceinline__ float gt_gelu_f(float x, gt_gelu kind, float *d) {
    if (kind == GT_GELU_TANH) {
        float x2 = x * x;
        float t = gt_tanh_accurate(GT_GELU_K0 * (x + GT_GELU_K1 * x2 * x));
        if (d)
            *d = 0.5f * (1.0f + t) +
                 0.5f * x * (1.0f - t * t) * GT_GELU_K0 * (1.0f + 3.0f * GT_GELU_K1 * x2);
        return 0.5f * x * (1.0f + t);
    }
    float cdf = 0.5f * (1.0f + erff(x * GT_GELU_RSQRT2));
    if (d) *d = cdf + x * GT_GELU_RSQRT2PI * __expf(-0.5f * x * x);
    return x * cdf;
}

/* h = gelu(gate) * up (fp32; the caller rounds). */
static __device__ __forceinline__ float gt_geglu_fwd1(float gate, float up, gt_gelu kind) {
    return gt_gelu_f(gate, kind, NULL) * up;
}

/* *dgate = dh * up * gelu'(gate), *dup = dh * gelu(gate) (fp32; the caller rounds). */
static __device__ __forceinline__ void gt_geglu_bwd1(float gate, float up, float dh, gt_gelu kind,
                                                     float *dgate, float *dup) {
    float dgelu, y = gt_gelu_f(gate, kind, &dgelu);
    *dgate = dh * up * dgelu;
    *dup = dh * y;
}

#endif
