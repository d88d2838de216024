/* Cross-entropy over vocab-parallel bf16 logits[N, V] (this rank's columns are vocab ids
 * vstart .. vstart+V-1), fp32 math. The three steps of kernels/ops.h:
 *   ce_partial   part[N,3] = (max, sum exp(logit - max), logit[target] or 0), one pass per row with
 *                an online max / sum-of-exponentials
 *   ce_finish    parts[tp,N,3] -> lse[N]; loss_sum[0] += sum over target rows of lse -
 * logit[target] (one block, fixed order: the loss is bit-identical from run to run) ce_backward
 * dlogits = (softmax - onehot(target)) * dscale in place over the bf16 logits; rows without a
 * target get 0 exp of arguments <= 0 uses the fast exponential (relative error ~1e-7 there); the
 * log of the sum is taken in double. */
#include <math.h>

#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define PARTIAL_THREADS 512
#define BACKWARD_THREADS 256
#define BACKWARD_COLS (BACKWARD_THREADS * GT_VEC * 4) /* columns per block of ce_backward */

/* Folds the running pair (m, s) (s = sum exp(x - m)) with another pair (m2, s2). */
static __device__ __forceinline__ void online_merge(float *m, float *s, float m2, float s2) {
    float mn = fmaxf(*m, m2);
    if (mn == -INFINITY) return; /* both empty */
    *s = *s * __expf(*m - mn) + s2 * __expf(m2 - mn);
    *m = mn;
}

/* One block per row. Each thread keeps an online (max, sumexp) over its columns; the block then
 * merges the pairs through shuffles and shared memory. */
template <int W>
static __global__ void ce_partial_kernel(float *part, const bf16 *logits, const int32_t *target,
                                         int64_t vstart, int V) {
    __shared__ float sm[32], ss[32];
    int n = blockIdx.x;
    const bf16 *row = logits + (size_t)n * V;
    float m = -INFINITY, s = 0.0f;
    for (int c = threadIdx.x * W; c < V; c += blockDim.x * W) {
        float f[W];
        if (W == GT_VEC)
            gt_load8(row + c, f);
        else
            f[0] = __bfloat162float(row[c]);
        float vm = f[0];
#pragma unroll
        for (int j = 1; j < W; j++) vm = fmaxf(vm, f[j]);
        float vs = 0.0f;
#pragma unroll
        for (int j = 0; j < W; j++) vs += __expf(f[j] - vm);
        online_merge(&m, &s, vm, vs);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        online_merge(&m, &s, m2, s2);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sm[warp] = m;
        ss[warp] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int k = 1; k < (int)(blockDim.x >> 5); k++) online_merge(&m, &s, sm[k], ss[k]);
        int64_t t = (int64_t)target[n] - vstart;
        int ours = target[n] >= 0 && t >= 0 && t < V;
        part[3 * (size_t)n + 0] = m;
        part[3 * (size_t)n + 1] = s;
        part[3 * (size_t)n + 2] = ours ? __bfloat162float(row[t]) : 0.0f;
    }
}

static __device__ __forceinline__ double warp_sum_double(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* A single block: thread k handles rows k, k + blockDim.x, ...; losses summed in double, in a
 * fixed order. */
static __global__ void ce_finish_kernel(float *lse, float *loss_sum, const float *parts,
                                        const int32_t *target, int tp, int N) {
    __shared__ double sd[32];
    double acc = 0.0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        float m = -INFINITY, s = 0.0f, tl = 0.0f;
        for (int r = 0; r < tp; r++) {
            const float *p = parts + ((size_t)r * N + n) * 3;
            online_merge(&m, &s, p[0], p[1]);
            tl += p[2];
        }
        float l = (float)((double)m + log((double)s));
        lse[n] = l;
        if (target[n] >= 0) acc += (double)l - (double)tl;
    }
    acc = warp_sum_double(acc);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sd[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int k = 0; k < (int)(blockDim.x >> 5); k++) total += sd[k];
        loss_sum[0] += (float)total;
    }
}

/* Grid (row, column chunk). dlogits may alias logits: every element is read and then written by
 * the same thread. */
template <int W>
static __global__ void ce_backward_kernel(bf16 *dlogits, const bf16 *logits, const int32_t *target,
                                          const float *lse, float dscale, int64_t vstart, int V) {
    int n = blockIdx.x;
    int tgt = target[n];
    int64_t t = tgt >= 0 ? (int64_t)tgt - vstart : -1; /* local column of the target, if ours */
    float l = lse[n];
    const bf16 *in = logits + (size_t)n * V;
    bf16 *out = dlogits + (size_t)n * V;
    int end = (int)min((int64_t)V, (int64_t)(blockIdx.y + 1) * BACKWARD_COLS);
    for (int c = blockIdx.y * BACKWARD_COLS + threadIdx.x * W; c < end; c += blockDim.x * W) {
        float f[W];
#pragma unroll
        for (int j = 0; j < W; j++) f[j] = 0.0f;
        if (tgt >= 0) { /* the same for the whole block */
            if (W == GT_VEC)
                gt_load8(in + c, f);
            else
                f[0] = __bfloat162float(in[c]);
#pragma unroll
            for (int j = 0; j < W; j++)
                f[j] = (__expf(f[j] - l) - (c + j == t ? 1.0f : 0.0f)) * dscale;
        }
        if (W == GT_VEC)
            gt_store8(out + c, f);
        else
            out[c] = __float2bfloat16_rn(f[0]);
    }
}

extern "C" void gt_cuda_ce_partial(gt_backend *be, void *part, const void *logits,
                                   const int32_t *target, int64_t vstart, int V, int N) {
    if (N <= 0 || V <= 0) return;
    GT_NVTX_PUSH("ce_partial");
    if (V % GT_VEC == 0 && gt_aligned16(logits))
        ce_partial_kernel<GT_VEC><<<N, PARTIAL_THREADS, 0, be->stream>>>(
            (float *)part, (const bf16 *)logits, target, vstart, V);
    else
        ce_partial_kernel<1><<<N, PARTIAL_THREADS, 0, be->stream>>>(
            (float *)part, (const bf16 *)logits, target, vstart, V);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

extern "C" void gt_cuda_ce_finish(gt_backend *be, void *lse, void *loss_sum, const void *parts,
                                  const int32_t *target, int tp, int N) {
    if (N <= 0) return;
    GT_NVTX_PUSH("ce_finish");
    ce_finish_kernel<<<1, 1024, 0, be->stream>>>((float *)lse, (float *)loss_sum,
                                                 (const float *)parts, target, tp, N);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

extern "C" void gt_cuda_ce_backward(gt_backend *be, void *dlogits, const void *logits,
                                    const int32_t *target, const void *lse, float dscale,
                                    int64_t vstart, int V, int N) {
    if (N <= 0 || V <= 0) return;
    GT_NVTX_PUSH("ce_backward");
    dim3 grid((unsigned)N, (unsigned)((V + BACKWARD_COLS - 1) / BACKWARD_COLS));
    if (V % GT_VEC == 0 && gt_aligned16(logits) && gt_aligned16(dlogits))
        ce_backward_kernel<GT_VEC><<<grid, BACKWARD_THREADS, 0, be->stream>>>(
            (bf16 *)dlogits, (const bf16 *)logits, target, (const float *)lse, dscale, vstart, V);
    else
        ce_backward_kernel<1><<<grid, BACKWARD_THREADS, 0, be->stream>>>(
            (bf16 *)dlogits, (const bf16 *)logits, target, (const float *)lse, dscale, vstart, V);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}
