/* Optimizer kernels: the squared gradient norm (for clipping) and AdamW.
 *
 * grad_sumsq: out[0] += sum g^2 over the gradients (fp32, or bf16 after set_grad_bf16). Deterministic: a fixed grid (from n and the SM
 * count) sums fixed element sets per thread and per block; block partials land in the cuBLASLt
 * workspace (free between GEMMs on the same stream) and one block adds them in order. The same
 * gradients give the same bits every run, so clipping does not make runs diverge.
 *
 * adamw: torch.optim.AdamW (single-tensor, non-fused) step by step, in fp32:
 *   g = grad * grad_scale
 *   p *= 1 - lr * wd
 *   m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
 *   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * with the scalar factors computed in double on the host, as Python does, and IEEE-rounded
 * sqrt and division on the device (the file is built with --use_fast_math). The bf16 parameter gets
 * the rounded fp32 master. With master NULL the bf16 parameter is its own master.
 *
 * The state kinds (args->state, DESIGN.md §5), one pass each, vectorized by 8 elements (bf16
 * moments) or 4 (fp32 moments). Bytes moved
 * per parameter per step (fp32 gradient read in every kind; grad_sumsq reads it once more; 2 bytes
 * less each with bf16 gradients, set_grad_bf16):
 *   GT_OPT_FP32          grad 4 + master r/w 8 + m r/w 8 + v r/w 8 + bf16 param write 2 = 30 B
 *   GT_OPT_BF16_MOMENTS  grad 4 + master r/w 8 + m r/w 4 + v r/w 4 + bf16 param write 2 = 22 B
 *   GT_OPT_BF16          grad 4 + bf16 param r/w 4 + m r/w 4 + v r/w 4               = 16 B
 * bf16 m and v are widened to fp32, updated in fp32 and rounded to nearest even on store; the
 * pure-bf16 parameter is stored stochastically rounded with the bits of kernels/bf16_round.h for
 * its element index, as the CPU backend rounds it. */
#include <math.h>

#include "../bf16_round.h"
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define SUMSQ_THREADS 256
#define SUMSQ_MAX_BLOCKS 1024

/* Sum of squares of the 16 bytes at p: 4 fp32 or 8 bf16 values. */
static __device__ __forceinline__ float sumsq16(const float *p) {
    float4 v = *(const float4 *)p;
    return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
}
static __device__ __forceinline__ float sumsq16(const bf16 *p) {
    float f[GT_VEC], s = 0.0f;
    gt_load8(p, f);
#pragma unroll
    for (int j = 0; j < GT_VEC; j++) s += f[j] * f[j];
    return s;
}

/* Per-block sums of squares of g[0..n) into part[blockIdx.x]; 16-byte loads over the aligned body
 * (vec: 16 / sizeof(G_T) elements each). */
template <typename G_T>
static __global__ void sumsq_partial_kernel(float *part, const G_T *g, size_t n, int vec) {
    __shared__ float scratch[32];
    const size_t per = 16 / sizeof(G_T);
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t nvec = vec ? n / per : 0;
    float acc = 0.0f;
    for (size_t i = first; i < nvec; i += stride) acc += sumsq16(g + i * per);
    for (size_t i = nvec * per + first; i < n; i += stride) {
        float v = gt_grad_get(g + i);
        acc += v * v;
    }
    acc = gt_block_sum(acc, scratch);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

/* One block: out[0] += sum of part[0..G), in a fixed order. */
static __global__ void sumsq_final_kernel(float *out, const float *part, int G) {
    __shared__ float scratch[32];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < G; i += blockDim.x) acc += part[i];
    acc = gt_block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] += acc;
}

extern "C" void gt_cuda_grad_sumsq(gt_backend *be, void *out, const void *g, size_t n) {
    if (n == 0) return;
    GT_NVTX_PUSH("grad_sumsq");
    int vec = gt_aligned16(g);
    size_t per = be->grad_bf16 ? 8 : 4;
    unsigned G = gt_grid_stride_blocks(be, vec ? n / per + per : n, SUMSQ_THREADS);
    if (G > SUMSQ_MAX_BLOCKS) G = SUMSQ_MAX_BLOCKS;
    float *part = (float *)be->workspace;
    if (be->grad_bf16)
        sumsq_partial_kernel<<<G, SUMSQ_THREADS, 0, be->stream>>>(part, (const bf16 *)g, n, vec);
    else
        sumsq_partial_kernel<<<G, SUMSQ_THREADS, 0, be->stream>>>(part, (const float *)g, n, vec);
    CUDA_CHECK_LAUNCH();
    sumsq_final_kernel<<<1, 1024, 0, be->stream>>>((float *)out, part, (int)G);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

/* The step's scalars, computed once on the host. */
typedef struct {
    float grad_scale, decay; /* decay = 1 - lr * wd */
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float step_size, bc2_sqrt, eps; /* lr / (1 - beta1^t), sqrt(1 - beta2^t) */
} adamw_scalars;

/* torch.lerp(m, g, w): its two formulas, chosen by |w| < 0.5 as torch does. */
static __device__ __forceinline__ float lerp_torch(float m, float g, float w) {
    return fabsf(w) < 0.5f ? m + w * (g - m) : g - (g - m) * (1.0f - w);
}

static __device__ __forceinline__ float adamw_one(float p, float *m, float *v, float g,
                                                  const adamw_scalars *s) {
    g *= s->grad_scale;
    p *= s->decay;
    *m = lerp_torch(*m, g, s->one_minus_beta1);
    *v = *v * s->beta2 + s->one_minus_beta2 * (g * g);
    float denom = __fdiv_rn(__fsqrt_rn(*v), s->bc2_sqrt) + s->eps;
    return p - s->step_size * __fdiv_rn(*m, denom);
}

/* W (8, 4 or 1) consecutive fp32 / bf16 values: 16-byte accesses (two for 8 fp32 values, one for
 * 8 bf16 values), 8-byte bf16 accesses when W is 4. */
template <int W> static __device__ __forceinline__ void load_f32(const float *p, float *f) {
    if constexpr (W == 1) {
        f[0] = p[0];
    } else {
#pragma unroll
        for (int q = 0; q < W / 4; q++) {
            float4 t = ((const float4 *)p)[q];
            f[4 * q] = t.x, f[4 * q + 1] = t.y, f[4 * q + 2] = t.z, f[4 * q + 3] = t.w;
        }
    }
}
template <int W> static __device__ __forceinline__ void store_f32(float *p, const float *f) {
    if constexpr (W == 1) {
        p[0] = f[0];
    } else {
#pragma unroll
        for (int q = 0; q < W / 4; q++)
            ((float4 *)p)[q] = make_float4(f[4 * q], f[4 * q + 1], f[4 * q + 2], f[4 * q + 3]);
    }
}

/* W (8 or 4) bf16 values as W / 2 packed pairs: one access of 2 W bytes. */
template <int W> union bf16_pack {
    __nv_bfloat162 h[W / 2];
    uint32_t w[W / 2];
    uint2 u2;
    uint4 u4;
};
template <int W> static __device__ __forceinline__ void load_pack(bf16_pack<W> *t, const bf16 *p) {
    if constexpr (W == 8) t->u4 = *(const uint4 *)p;
    else t->u2 = *(const uint2 *)p;
}
template <int W> static __device__ __forceinline__ void store_pack(bf16 *p, const bf16_pack<W> &t) {
    if constexpr (W == 8) *(uint4 *)p = t.u4;
    else *(uint2 *)p = t.u2;
}

template <int W> static __device__ __forceinline__ void load_bf16(const bf16 *p, float *f) {
    if constexpr (W == 1) {
        f[0] = __bfloat162float(p[0]);
    } else {
        bf16_pack<W> t;
        load_pack<W>(&t, p);
#pragma unroll
        for (int q = 0; q < W / 2; q++) {
            float2 a = __bfloat1622float2(t.h[q]);
            f[2 * q] = a.x, f[2 * q + 1] = a.y;
        }
    }
}
template <int W> static __device__ __forceinline__ void store_bf16(bf16 *p, const float *f) {
    if constexpr (W == 1) {
        p[0] = __float2bfloat16_rn(f[0]);
    } else {
        bf16_pack<W> t;
#pragma unroll
        for (int q = 0; q < W / 2; q++) t.h[q] = __floats2bfloat162_rn(f[2 * q], f[2 * q + 1]);
        store_pack<W>(p, t);
    }
}

/* W consecutive bf16 values stochastically rounded from f; element j's bits are those of index
 * index + j. */
template <int W>
static __device__ __forceinline__ void store_bf16_sr(bf16 *p, const float *f, uint64_t key,
                                                     uint64_t index) {
    uint32_t h[W];
#pragma unroll
    for (int j = 0; j < W; j++) h[j] = gt_bf16_bits_sr(__float_as_uint(f[j]), gt_sr_bits(key, index + j));
    if constexpr (W == 1) {
        p[0] = __ushort_as_bfloat16((unsigned short)h[0]);
    } else {
        bf16_pack<W> t;
#pragma unroll
        for (int q = 0; q < W / 2; q++) t.w[q] = h[2 * q] | (h[2 * q + 1] << 16);
        store_pack<W>(p, t);
    }
}

/* Moments of type M (float or bf16), W of them. */
template <int W> static __device__ __forceinline__ void load_mom(const float *p, float *f) { load_f32<W>(p, f); }
template <int W> static __device__ __forceinline__ void load_mom(const bf16 *p, float *f) { load_bf16<W>(p, f); }
template <int W> static __device__ __forceinline__ void store_mom(float *p, const float *f) { store_f32<W>(p, f); }
template <int W> static __device__ __forceinline__ void store_mom(bf16 *p, const float *f) { store_bf16<W>(p, f); }
/* The gradient (fp32, or bf16 with set_grad_bf16), W of them. */
template <int W> static __device__ __forceinline__ void load_grad(const float *p, float *f) { load_f32<W>(p, f); }
template <int W> static __device__ __forceinline__ void load_grad(const bf16 *p, float *f) { load_bf16<W>(p, f); }

/* Grid-stride over groups of W elements. M: the moments' type; G_T: the gradients'; SR: the
 * parameter (with no master) stochastically rounded, element e's bits from index0 + e. */
template <int W, typename M, typename G_T, bool SR>
static __global__ void adamw_kernel(bf16 *param, float *master, M *m, M *v, const G_T *grad,
                                    size_t n, adamw_scalars s, uint64_t key, uint64_t index0) {
    size_t groups = n / W;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < groups;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t e = i * W;
        float pv[W], mv[W], vv[W], gv[W];
        if (master)
            load_f32<W>(master + e, pv);
        else
            load_bf16<W>(param + e, pv);
        load_mom<W>(m + e, mv);
        load_mom<W>(v + e, vv);
        load_grad<W>(grad + e, gv);
#pragma unroll
        for (int j = 0; j < W; j++) pv[j] = adamw_one(pv[j], &mv[j], &vv[j], gv[j], &s);
        if (master) store_f32<W>(master + e, pv);
        store_mom<W>(m + e, mv);
        store_mom<W>(v + e, vv);
        if (SR)
            store_bf16_sr<W>(param + e, pv, key, index0 + e);
        else
            store_bf16<W>(param + e, pv);
    }
}

static adamw_scalars make_scalars(const gt_adamw_args *a) {
    adamw_scalars s;
    double bc1 = 1.0 - pow((double)a->beta1, (double)a->step);
    double bc2 = 1.0 - pow((double)a->beta2, (double)a->step);
    s.grad_scale = a->grad_scale;
    s.decay = (float)(1.0 - (double)a->lr * (double)a->weight_decay);
    s.beta1 = a->beta1;
    s.one_minus_beta1 = (float)(1.0 - (double)a->beta1);
    s.beta2 = a->beta2;
    s.one_minus_beta2 = (float)(1.0 - (double)a->beta2);
    s.step_size = (float)((double)a->lr / bc1);
    s.bc2_sqrt = (float)sqrt(bc2);
    s.eps = a->eps;
    return s;
}

/* Whether every pointer allows the accesses of a group of W: 16 bytes for fp32 (W 4 and 8), 2 W
 * bytes for bf16. */
template <typename M, typename G_T>
static bool adamw_aligned(int W, const bf16 *param, const float *master, const M *m, const M *v,
                          const G_T *grad) {
    const uintptr_t fa = 15u, ba = (uintptr_t)(2 * W - 1), ma = sizeof(M) == 4 ? fa : ba;
    const uintptr_t ga = sizeof(G_T) == 4 ? fa : ba;
    return ((uintptr_t)m & ma) == 0 && ((uintptr_t)v & ma) == 0 && ((uintptr_t)grad & ga) == 0 &&
           (!master || ((uintptr_t)master & fa) == 0) && ((uintptr_t)param & ba) == 0;
}

template <int W, typename M, typename G_T, bool SR>
static void adamw_run(gt_backend *be, bf16 *param, float *master, M *m, M *v, const G_T *grad,
                      size_t n, const adamw_scalars &s, uint64_t key, uint64_t index0) {
    const int threads = 256;
    adamw_kernel<W, M, G_T, SR><<<gt_grid_stride_blocks(be, n / W, threads), threads, 0, be->stream>>>(
        param, master, m, v, grad, n, s, key, index0);
    CUDA_CHECK_LAUNCH();
}

/* The vector body in groups of W elements when every pointer allows their accesses (8 for bf16
 * moments: 16-byte loads of m and v keep more bytes in flight per thread; 4 for fp32 moments),
 * then the scalar tail. */
template <typename M, typename G_T, bool SR>
static void adamw_launch(gt_backend *be, bf16 *param, float *master, M *m, M *v, const G_T *grad,
                         size_t n, const adamw_scalars &s, uint64_t key, uint64_t index0) {
    int W = sizeof(M) == 2 && adamw_aligned(8, param, master, m, v, grad) ? 8
            : adamw_aligned(4, param, master, m, v, grad)                 ? 4
                                                                          : 1;
    size_t body = n / W * W;
    if constexpr (sizeof(M) == 2) /* 8-wide groups only for bf16 moments: no fp32 kernel of them */
        if (body && W == 8) adamw_run<8, M, G_T, SR>(be, param, master, m, v, grad, body, s, key, index0);
    if (body && W == 4) adamw_run<4, M, G_T, SR>(be, param, master, m, v, grad, body, s, key, index0);
    if (W == 1) body = 0;
    if (n > body)
        adamw_run<1, M, G_T, SR>(be, param + body, master ? master + body : NULL, m + body, v + body, grad + body,
                            n - body, s, key, index0 + body);
}

/* The kernel of args->state, for gradients of type G_T. */
template <typename G_T>
static void adamw_state(gt_backend *be, bf16 *p, float *ms, void *m, void *v, const G_T *g, size_t n,
                        const gt_adamw_args *args, const adamw_scalars &s, uint64_t key) {
    if (args->state == GT_OPT_FP32)
        adamw_launch<float, G_T, false>(be, p, ms, (float *)m, (float *)v, g, n, s, key, args->index0);
    else if (args->state == GT_OPT_BF16_MOMENTS)
        adamw_launch<bf16, G_T, false>(be, p, ms, (bf16 *)m, (bf16 *)v, g, n, s, key, args->index0);
    else
        adamw_launch<bf16, G_T, true>(be, p, NULL, (bf16 *)m, (bf16 *)v, g, n, s, key, args->index0);
}

extern "C" void gt_cuda_adamw(gt_backend *be, void *param, void *master, void *m, void *v,
                              const void *grad, size_t n, const gt_adamw_args *args) {
    if (n == 0) return;
    GT_ASSERT(args->step >= 1, "adamw: step %d (1-based)", args->step);
    GT_ASSERT(args->state != GT_OPT_BF16 || !master, "adamw: the bf16 state has no master copy");
    GT_NVTX_PUSH("adamw");
    adamw_scalars s = make_scalars(args);
    uint64_t key = gt_sr_key(args->seed, (uint64_t)args->step);
    if (be->grad_bf16)
        adamw_state(be, (bf16 *)param, (float *)master, m, v, (const bf16 *)grad, n, args, s, key);
    else
        adamw_state(be, (bf16 *)param, (float *)master, m, v, (const float *)grad, n, args, s, key);
    GT_NVTX_POP();
}
