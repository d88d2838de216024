/* Token embedding, vocab-parallel: this rank holds rows [vstart, vstart + V) of wte[V, C].
 *
 * Forward: out[N,C] = wte[tok - vstart] * scale (bf16, one rounding), zero for tokens of other
 * ranks. Backward: dwte[V,C] (fp32, or bf16 after set_grad_bf16: one rounding per row) += dout * scale,
 * skipping pad_id (HF padding_idx) and tokens of
 * other ranks. Deterministic and sort-free: the block of the FIRST position holding a token id
 * sums, in position order, the rows of every position with that id and adds the sum to dwte once;
 * the blocks of later positions with the same id exit. No atomics, so the result is bit-identical
 * from run to run. Cost: each block scans the token ids from its position on (N int32, in L1/L2)
 * cooperatively, 256 at a time; the N x C gradient is read once. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

/* One block per token row n; threads stride over the C columns, 8 at a time with vec. */
static __global__ void embed_fwd_kernel(bf16 *out, const int32_t *tok, const bf16 *wte, float scale,
                                        int64_t vstart, int V, int C, int vec) {
    int n = blockIdx.x;
    int64_t r = (int64_t)tok[n] - vstart;
    int inside = r >= 0 && r < V;
    bf16 *o = out + (size_t)n * C;
    const bf16 *src = wte + (size_t)(inside ? r : 0) * C;
    if (vec) {
        for (int c = threadIdx.x * GT_VEC; c < C; c += blockDim.x * GT_VEC) {
            float f[GT_VEC] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (inside) {
                gt_load8(src + c, f);
#pragma unroll
                for (int j = 0; j < GT_VEC; j++) f[j] *= scale;
            }
            gt_store8(o + c, f);
        }
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x)
            o[c] = __float2bfloat16_rn(inside ? __bfloat162float(src[c]) * scale : 0.0f);
    }
}

#define BWD_THREADS 256 /* whole warps: the token scan uses warp ballots */

/* acc[0..W) += scale * g[0..W), W = 8 (one 16-byte load) or 1. */
template <int W>
static __device__ __forceinline__ void add_scaled(float *acc, const bf16 *g, float scale) {
    if (W == GT_VEC) {
        float f[GT_VEC];
        gt_load8(g, f);
#pragma unroll
        for (int j = 0; j < GT_VEC; j++) acc[j] += f[j] * scale;
    } else {
        acc[0] += __bfloat162float(*g) * scale;
    }
}

/* row[0..W) += acc[0..W): fp32 (two 16-byte accesses when W = 8) or bf16 (one, rounded once). */
template <int W> static __device__ __forceinline__ void add_to_row(float *row, const float *acc) {
    if (W == GT_VEC) {
        float4 *p = (float4 *)row;
        float4 lo = p[0], hi = p[1];
        lo.x += acc[0], lo.y += acc[1], lo.z += acc[2], lo.w += acc[3];
        hi.x += acc[4], hi.y += acc[5], hi.z += acc[6], hi.w += acc[7];
        p[0] = lo;
        p[1] = hi;
    } else {
        row[0] += acc[0];
    }
}
template <int W> static __device__ __forceinline__ void add_to_row(bf16 *row, const float *acc) {
    if (W == GT_VEC) {
        float f[GT_VEC];
        gt_load8(row, f);
#pragma unroll
        for (int j = 0; j < GT_VEC; j++) f[j] += acc[j];
        gt_store8(row, f);
    } else {
        gt_grad_put(row, gt_grad_get(row) + acc[0]);
    }
}

/* One block per token position n (see the file comment for the scheme). The positions m >= n
 * holding the same token are found BWD_THREADS at a time: one token load per thread, a ballot per
 * warp, the warps' hit masks in shared memory; every thread then walks the hits in increasing m
 * and adds those rows of dout to its W columns. */
template <int W, typename G_T>
static __global__ void embed_bwd_kernel(G_T *dwte, const bf16 *dout, const int32_t *tok,
                                        float scale, int64_t vstart, int V, int N, int C,
                                        int pad_id) {
    __shared__ uint32_t hits[BWD_THREADS / 32];
    int n = blockIdx.x, t = tok[n], lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int64_t r = (int64_t)t - vstart;
    if (t == pad_id || r < 0 || r >= V) return; /* the same for the whole block */
    int seen = 0;
    for (int m = threadIdx.x; m < n; m += BWD_THREADS) seen |= __ldg(tok + m) == t;
    if (__syncthreads_or(seen)) return; /* an earlier position owns this row */
    G_T *row = dwte + (size_t)r * C;
    for (int c0 = 0; c0 < C; c0 += BWD_THREADS * W) { /* one pass when C <= 2048 (W = 8) */
        int c = c0 + threadIdx.x * W;
        float acc[W];
#pragma unroll
        for (int j = 0; j < W; j++) acc[j] = 0.0f;
        for (int base = n; base < N; base += BWD_THREADS) {
            int m = base + threadIdx.x;
            uint32_t mask = __ballot_sync(0xffffffffu, m < N && __ldg(tok + m) == t);
            if (lane == 0) hits[warp] = mask;
            __syncthreads();
            if (c < C)
                for (int w = 0; w < BWD_THREADS / 32; w++)
                    for (uint32_t k = hits[w]; k; k &= k - 1) {
                        int hit = base + w * 32 + __ffs((int)k) - 1;
                        add_scaled<W>(acc, dout + (size_t)hit * C + c, scale);
                    }
            __syncthreads(); /* hits is rewritten by the next chunk */
        }
        if (c < C) add_to_row<W>(row + c, acc);
    }
}

/* Threads per block for a row of C columns handled `width` at a time: a multiple of 32, <= 256. */
static int row_threads(int C, int width) {
    int need = (C / width + 31) / 32 * 32;
    return need < 32 ? 32 : need > 256 ? 256 : need;
}

extern "C" void gt_cuda_embed_fwd(gt_backend *be, void *out, const int32_t *tok, const void *wte,
                                  float scale, int64_t vstart, int V, int N, int C) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("embed_fwd");
    int vec = C % GT_VEC == 0 && gt_aligned16(out) && gt_aligned16(wte);
    embed_fwd_kernel<<<N, row_threads(C, vec ? GT_VEC : 1), 0, be->stream>>>(
        (bf16 *)out, tok, (const bf16 *)wte, scale, vstart, V, C, vec);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

template <typename G_T>
static void launch_embed_bwd(gt_backend *be, G_T *dwte, const bf16 *dout, const int32_t *tok, float scale,
                             int64_t vstart, int V, int N, int C, int pad_id) {
    if (C % GT_VEC == 0 && gt_aligned16(dwte) && gt_aligned16(dout))
        embed_bwd_kernel<GT_VEC><<<N, BWD_THREADS, 0, be->stream>>>(dwte, dout, tok, scale, vstart, V, N, C, pad_id);
    else
        embed_bwd_kernel<1><<<N, BWD_THREADS, 0, be->stream>>>(dwte, dout, tok, scale, vstart, V, N, C, pad_id);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_embed_bwd(gt_backend *be, void *dwte, const void *dout, const int32_t *tok,
                                  float scale, int64_t vstart, int V, int N, int C, int pad_id) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("embed_bwd");
    if (be->grad_bf16)
        launch_embed_bwd(be, (bf16 *)dwte, (const bf16 *)dout, tok, scale, vstart, V, N, C, pad_id);
    else
        launch_embed_bwd(be, (float *)dwte, (const bf16 *)dout, tok, scale, vstart, V, N, C, pad_id);
    GT_NVTX_POP();
}
