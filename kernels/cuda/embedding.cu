/* Token embedding, vocab-parallel: this rank holds rows [vstart, vstart + V) of wte[V, C].
 *
 * Forward: out[N,C] = wte[tok - vstart] * scale (bf16, one rounding), zero for tokens of other
 * ranks. Backward: dwte[V,C] (fp32) += dout * scale, skipping pad_id (HF padding_idx) and tokens of
 * other ranks. Deterministic and sort-free: the block of the FIRST position holding a token id
 * sums, in position order, the rows of every position with that id and adds the sum to dwte once;
 * the blocks of later positions with the same id exit. No atomics, so the result is bit-identical
 * from run to run. Cost: each block scans the token ids (N int32, cached), which is cheap next to
 * the N x C gradient read. */
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

/* Adds, into acc[0..w), scale * dout[m, c..c+w) of every position m >= n whose token is t,
 * in increasing m. w is GT_VEC (16-byte loads) or 1. */
static __device__ __forceinline__ void sum_rows_of_token(float *acc, const bf16 *dout,
                                                         const int32_t *tok, int t, float scale,
                                                         int n, int N, int C, int c, int vec) {
    for (int m = n; m < N; m++) {
        if (__ldg(tok + m) != t) continue;
        const bf16 *g = dout + (size_t)m * C + c;
        if (vec) {
            float f[GT_VEC];
            gt_load8(g, f);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) acc[j] += f[j] * scale;
        } else {
            acc[0] += __bfloat162float(*g) * scale;
        }
    }
}

/* One block per token position n (see the file comment for the scheme). */
static __global__ void embed_bwd_kernel(float *dwte, const bf16 *dout, const int32_t *tok,
                                        float scale, int64_t vstart, int V, int N, int C,
                                        int pad_id, int vec) {
    int n = blockIdx.x;
    int t = tok[n];
    int64_t r = (int64_t)t - vstart;
    if (t == pad_id || r < 0 || r >= V) return; /* the same for the whole block */
    int seen = 0;
    for (int m = threadIdx.x; m < n; m += blockDim.x) seen |= __ldg(tok + m) == t;
    if (__syncthreads_or(seen)) return; /* an earlier position owns this row */
    float *row = dwte + (size_t)r * C;
    int width = vec ? GT_VEC : 1;
    for (int c = threadIdx.x * width; c < C; c += blockDim.x * width) {
        float acc[GT_VEC] = {0, 0, 0, 0, 0, 0, 0, 0};
        sum_rows_of_token(acc, dout, tok, t, scale, n, N, C, c, vec);
        if (vec) {
            float4 *p = (float4 *)(row + c);
            float4 lo = p[0], hi = p[1];
            lo.x += acc[0], lo.y += acc[1], lo.z += acc[2], lo.w += acc[3];
            hi.x += acc[4], hi.y += acc[5], hi.z += acc[6], hi.w += acc[7];
            p[0] = lo;
            p[1] = hi;
        } else {
            row[c] += acc[0];
        }
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

extern "C" void gt_cuda_embed_bwd(gt_backend *be, void *dwte, const void *dout, const int32_t *tok,
                                  float scale, int64_t vstart, int V, int N, int C, int pad_id) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("embed_bwd");
    int vec = C % GT_VEC == 0 && gt_aligned16(dwte) && gt_aligned16(dout);
    embed_bwd_kernel<<<N, row_threads(C, vec ? GT_VEC : 1), 0, be->stream>>>(
        (float *)dwte, (const bf16 *)dout, tok, scale, vstart, V, N, C, pad_id, vec);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}
