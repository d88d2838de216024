/* RMSNorm with zero-centered gamma (Gemma): y = x * rsqrt(mean(x^2) + eps) * (1 + w).
 *
 * As HF's GemmaRMSNorm: everything in fp32 on the bf16 input, (x * rstd) first, then * (1 + w), one
 * rounding to bf16 at the end. The forward saves rstd[N] (fp32) for the backward.
 *
 * Backward, with xhat = x * rstd and g = dy * (1 + w):
 *   dx = rstd * (g - xhat * mean(g * xhat))     added into dx (bf16, one rounding)
 *   dw = sum over rows of dy * xhat             added into dw (fp32)
 * dw is deterministic: each block sums its rows into its own partial row (in the cuBLASLt
 * workspace, free between GEMMs on the same stream), then one small kernel adds the partials in
 * block order. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define FWD_ROWS_PER_BLOCK 8 /* one warp per row */

/* out[N,C], rstd[N] from x[N,C], w[C]. One warp per row; lanes stride over columns, 8 at a time
 * with vec. x is read twice; the second read hits L1/L2 (a row is at most a few KiB). */
static __global__ void rmsnorm_fwd_kernel(bf16 *out, float *rstd, const bf16 *x, const bf16 *w,
                                          float eps, float inv_c, int N, int C, int vec) {
    int row = blockIdx.x * FWD_ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return; /* the whole warp leaves together */
    const bf16 *xr = x + (size_t)row * C;
    bf16 *yr = out + (size_t)row * C;
    float ss = 0.0f;
    if (vec) {
        for (int c = lane * GT_VEC; c < C; c += 32 * GT_VEC) {
            float f[GT_VEC];
            gt_load8(xr + c, f);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) ss += f[j] * f[j];
        }
    } else {
        for (int c = lane; c < C; c += 32) {
            float f = __bfloat162float(xr[c]);
            ss += f * f;
        }
    }
    float r = rsqrtf(gt_warp_sum(ss) * inv_c + eps);
    if (lane == 0) rstd[row] = r;
    if (vec) {
        for (int c = lane * GT_VEC; c < C; c += 32 * GT_VEC) {
            float f[GT_VEC], g[GT_VEC];
            gt_load8(xr + c, f);
            gt_load8(w + c, g);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) f[j] = (f[j] * r) * (1.0f + g[j]);
            gt_store8(yr + c, f);
        }
    } else {
        for (int c = lane; c < C; c += 32) {
            float f = __bfloat162float(xr[c]) * r;
            yr[c] = __float2bfloat16_rn(f * (1.0f + __bfloat162float(w[c])));
        }
    }
}

/* W (1 or 8) consecutive bf16 at p + c as floats. */
template <int W> static __device__ __forceinline__ void load_cols(const bf16 *p, int c, float *f) {
    if (W == GT_VEC)
        gt_load8(p + c, f);
    else
        f[0] = __bfloat162float(p[c]);
}

/* One block per group of rows (rows blockIdx.x, + gridDim.x, ...); each thread owns the same
 * columns in every row, so its share of the block's dw partial row (part[blockIdx.x, C]) is
 * private to it and needs no atomics. W columns per access: 8 (16-byte) or 1; a template so the
 * per-thread arrays stay in registers. */
template <int W>
static __global__ void rmsnorm_bwd_kernel(bf16 *dx, float *part, const bf16 *dout, const bf16 *x,
                                          const bf16 *w, const float *rstd, float inv_c, int N,
                                          int C) {
    __shared__ float scratch[32];
    float *prow = part + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x * W; c < C; c += blockDim.x * W)
#pragma unroll
        for (int j = 0; j < W; j++) prow[c + j] = 0.0f;
    for (int n = blockIdx.x; n < N; n += gridDim.x) {
        const bf16 *xr = x + (size_t)n * C, *gr = dout + (size_t)n * C;
        bf16 *dxr = dx + (size_t)n * C;
        float r = rstd[n], dot = 0.0f;
        for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
            float fx[W], fg[W], fw[W];
            load_cols<W>(xr, c, fx);
            load_cols<W>(gr, c, fg);
            load_cols<W>(w, c, fw);
#pragma unroll
            for (int j = 0; j < W; j++) {
                float xhat = fx[j] * r;
                dot += fg[j] * (1.0f + fw[j]) * xhat;
                prow[c + j] += fg[j] * xhat;
            }
        }
        float mean = gt_block_sum(dot, scratch) * inv_c;
        for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
            float fx[W], fg[W], fw[W], fd[W];
            load_cols<W>(xr, c, fx);
            load_cols<W>(gr, c, fg);
            load_cols<W>(w, c, fw);
            load_cols<W>(dxr, c, fd);
#pragma unroll
            for (int j = 0; j < W; j++) fd[j] += r * (fg[j] * (1.0f + fw[j]) - fx[j] * r * mean);
            if (W == GT_VEC)
                gt_store8(dxr + c, fd);
            else
                dxr[c] = __float2bfloat16_rn(fd[0]);
        }
    }
}

#define REDUCE_LANES 8 /* partial rows summed in parallel per column, then combined in order */

/* dw[C] += sum over b of part[b, C], b = 0..G-1, in a fixed order. Block: 32 columns x 8 lanes. */
static __global__ void rmsnorm_dw_reduce_kernel(float *dw, const float *part, int G, int C) {
    __shared__ float s[REDUCE_LANES][33];
    int tx = threadIdx.x & 31, lane = threadIdx.x >> 5;
    int col = blockIdx.x * 32 + tx;
    float acc = 0.0f;
    if (col < C)
        for (int b = lane; b < G; b += REDUCE_LANES) acc += part[(size_t)b * C + col];
    s[lane][tx] = acc;
    __syncthreads();
    if (lane == 0 && col < C) {
        float t = 0.0f;
        for (int k = 0; k < REDUCE_LANES; k++) t += s[k][tx];
        dw[col] += t;
    }
}

extern "C" void gt_cuda_rmsnorm_fwd(gt_backend *be, void *out, void *rstd, const void *x,
                                    const void *w, float eps, int N, int C) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("rmsnorm_fwd");
    int vec = C % GT_VEC == 0 && gt_aligned16(out) && gt_aligned16(x) && gt_aligned16(w);
    unsigned blocks = (unsigned)((N + FWD_ROWS_PER_BLOCK - 1) / FWD_ROWS_PER_BLOCK);
    rmsnorm_fwd_kernel<<<blocks, 32 * FWD_ROWS_PER_BLOCK, 0, be->stream>>>(
        (bf16 *)out, (float *)rstd, (const bf16 *)x, (const bf16 *)w, eps, 1.0f / (float)C, N, C,
        vec);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

extern "C" void gt_cuda_rmsnorm_bwd(gt_backend *be, void *dx, void *dw, const void *dout,
                                    const void *x, const void *w, const void *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("rmsnorm_bwd");
    int vec = C % GT_VEC == 0 && gt_aligned16(dx) && gt_aligned16(dout) && gt_aligned16(x) &&
              gt_aligned16(w);
    int width = vec ? GT_VEC : 1;
    int threads = (C / width + 31) / 32 * 32;
    threads = threads < 64 ? 64 : threads > 1024 ? 1024 : threads;
    /* Enough blocks to fill the chip, no more partial rows than rows or than the workspace holds.
     */
    size_t fit = be->workspace_bytes / ((size_t)C * sizeof(float));
    int G = be->num_sms * 4;
    if (G > N) G = N;
    if ((size_t)G > fit) G = (int)fit;
    GT_ASSERT(G >= 1, "rmsnorm_bwd: C=%d too wide for the %zu-byte workspace", C,
              be->workspace_bytes);
    float *part = (float *)be->workspace;
    if (vec)
        rmsnorm_bwd_kernel<GT_VEC><<<G, threads, 0, be->stream>>>(
            (bf16 *)dx, part, (const bf16 *)dout, (const bf16 *)x, (const bf16 *)w,
            (const float *)rstd, 1.0f / (float)C, N, C);
    else
        rmsnorm_bwd_kernel<1><<<G, threads, 0, be->stream>>>(
            (bf16 *)dx, part, (const bf16 *)dout, (const bf16 *)x, (const bf16 *)w,
            (const float *)rstd, 1.0f / (float)C, N, C);
    CUDA_CHECK_LAUNCH();
    rmsnorm_dw_reduce_kernel<<<(C + 31) / 32, 32 * REDUCE_LANES, 0, be->stream>>>((float *)dw, part,
                                                                                  G, C);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}
