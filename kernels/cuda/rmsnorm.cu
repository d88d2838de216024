/* RMSNorm with zero-centered gamma (Gemma): y = x * rsqrt(mean(x^2) + eps) * (1 + w).
 *
 * As HF's GemmaRMSNorm: everything in fp32 on the bf16 input, (x * rstd) first, then * (1 + w), one
 * rounding to bf16 at the end (rmsnorm.cuh: the element expression, shared with the fused RMSNorm +
 * FP8 cast of rmsnorm_fp8.cu, whose first pass is this file's row kernel without an output). The
 * forward saves rstd[N] (fp32) for the backward. add_rmsnorm_fwd is the residual add fused in
 * front: the row kernel's layout with add's element expression, bit-identical to add + the norm.
 * Up to FWD_BLOCK_MAX_ROWS rows (decode) both run one block per row instead of one warp.
 *
 * Backward, with xhat = x * rstd and g = dy * (1 + w):
 *   dx = rstd * (g - xhat * mean(g * xhat))     added into dx (bf16, one rounding)
 *   dw = sum over rows of dy * xhat             added into dw (fp32; bf16 gradients: one rounding)
 * dw is deterministic: each block sums its rows into its own partial row (in the cuBLASLt
 * workspace, free between GEMMs on the same stream), then one small kernel adds the partials in
 * block order. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"
#include "rmsnorm.cuh"

#define FWD_ROWS_PER_BLOCK 8 /* one warp per row */

/* Columns a warp's lanes cover per loop round: FWD_UNROLL 16-byte vectors each, loaded together
 * (a decode step's rows are few: each warp's loads, not the bandwidth, set the time). */
#define FWD_UNROLL 4
#define FWD_SWEEP (32 * GT_VEC * FWD_UNROLL)

/* The FWD_UNROLL vectors of one lane's sweep round at c0, c0 + 256, .. of the rows p and q (zero
 * past C), all loads issued together. */
static __device__ __forceinline__ void sweep_load2(gt_raw_bf16<GT_VEC> rp[FWD_UNROLL], const bf16 *p,
                                                   gt_raw_bf16<GT_VEC> rq[FWD_UNROLL], const bf16 *q, int c0,
                                                   int C) {
#pragma unroll
    for (int u = 0; u < FWD_UNROLL; u++) {
        int c = c0 + u * 32 * GT_VEC;
        rp[u] = c < C ? gt_raw_load<GT_VEC>(p + c) : gt_raw_zero<GT_VEC>();
        rq[u] = c < C ? gt_raw_load<GT_VEC>(q + c) : gt_raw_zero<GT_VEC>();
    }
}

/* y[C] = rmsnorm of the row x[C] with rstd r, lane `lane` of the row's warp: the row kernel's
 * output pass (vectors; x, y, w 16-byte aligned, C % 8 == 0). */
static __device__ __forceinline__ void norm_row_vec(bf16 *y, const bf16 *x, const bf16 *w, float r, int C,
                                                    int lane) {
    for (int c0 = lane * GT_VEC; c0 < C; c0 += FWD_SWEEP) {
        gt_raw_bf16<GT_VEC> rx[FWD_UNROLL], rw[FWD_UNROLL];
        sweep_load2(rx, x, rw, w, c0, C);
#pragma unroll
        for (int u = 0; u < FWD_UNROLL; u++) {
            int c = c0 + u * 32 * GT_VEC;
            if (c >= C) break;
            float f[GT_VEC], g[GT_VEC];
            gt_raw_unpack<GT_VEC>(rx[u], f);
            gt_raw_unpack<GT_VEC>(rw[u], g);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) f[j] = gt_rmsnorm1(f[j], r, g[j]);
            gt_store8(y + c, f);
        }
    }
}

/* out[N,C] (NULL: rstd only, the first pass of rmsnorm_fwd_fp8), rstd[N] from x[N,C], w[C]. One
 * warp per row; lanes stride over columns, 8 at a time with vec_x (the sum of squares) and vec_y
 * (the output). x is read twice; the second read hits L1/L2 (a row is at most a few KiB).
 * The summation order, hence rstd's bits, depends on vec_x only (C and x's alignment), never on
 * out: rmsnorm_fwd_fp8 gets the same rstd with or without an output, at any output alignment. */
static __global__ void rmsnorm_fwd_kernel(bf16 *out, float *rstd, const bf16 *x, const bf16 *w,
                                          float eps, float inv_c, int N, int C, int vec_x,
                                          int vec_y) {
    int row = blockIdx.x * FWD_ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return; /* the whole warp leaves together */
    const bf16 *xr = x + (size_t)row * C;
    float ss = 0.0f;
    if (vec_x) {
        for (int c0 = lane * GT_VEC; c0 < C; c0 += FWD_SWEEP) {
            gt_raw_bf16<GT_VEC> rx[FWD_UNROLL];
#pragma unroll
            for (int u = 0; u < FWD_UNROLL; u++) {
                int c = c0 + u * 32 * GT_VEC;
                rx[u] = c < C ? gt_raw_load<GT_VEC>(xr + c) : gt_raw_zero<GT_VEC>();
            }
#pragma unroll
            for (int u = 0; u < FWD_UNROLL; u++) {
                if (c0 + u * 32 * GT_VEC >= C) break;
                float f[GT_VEC];
                gt_raw_unpack<GT_VEC>(rx[u], f);
                ss = gt_rmsnorm_sumsq8(ss, f);
            }
        }
    } else {
        for (int c = lane; c < C; c += 32) {
            float f = __bfloat162float(xr[c]);
            ss += f * f;
        }
    }
    float r = rsqrtf(gt_warp_sum(ss) * inv_c + eps);
    if (lane == 0) rstd[row] = r;
    if (!out) return;
    bf16 *yr = out + (size_t)row * C;
    if (vec_y) {
        norm_row_vec(yr, xr, w, r, C, lane);
    } else {
        for (int c = lane; c < C; c += 32)
            yr[c] = __float2bfloat16_rn(
                gt_rmsnorm1(__bfloat162float(xr[c]), r, __bfloat162float(w[c])));
    }
}

/* add_rmsnorm_fwd: res = a + b (rounded to bf16), out = rmsnorm(res), rstd, for rows whose every
 * pointer is 16-byte aligned and C % 8 == 0 (the host runs add then the row kernel otherwise). The
 * row kernel's layout exactly: one warp per row, lane i takes the 8 columns at i*8, + 256, ...; the
 * sum is add's expression (fp32 sum of the bf16 inputs, one rounding) and the sum of squares runs
 * over the rounded sums in the row kernel's order (gt_rmsnorm_sumsq8), so every bit equals add
 * followed by rmsnorm_fwd. The second pass re-reads the row of res each lane has just written itself
 * (program order makes its own stores visible; the row is in L1/L2). res may alias a or b: each
 * lane reads its columns of a and b before it writes them. out NULL: res and rstd only (the first
 * pass of add_rmsnorm_fwd_fp8). */
static __global__ void add_rmsnorm_fwd_kernel(bf16 *res, bf16 *out, float *rstd, const bf16 *a,
                                              const bf16 *b, const bf16 *w, float eps, float inv_c,
                                              int N, int C) {
    int row = blockIdx.x * FWD_ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= N) return; /* the whole warp leaves together */
    size_t off = (size_t)row * C;
    float ss = 0.0f;
    for (int c0 = lane * GT_VEC; c0 < C; c0 += FWD_SWEEP) {
        gt_raw_bf16<GT_VEC> ra[FWD_UNROLL], rb[FWD_UNROLL];
        sweep_load2(ra, a + off, rb, b + off, c0, C);
#pragma unroll
        for (int u = 0; u < FWD_UNROLL; u++) {
            int c = c0 + u * 32 * GT_VEC;
            if (c >= C) break;
            float fa[GT_VEC], fb[GT_VEC];
            gt_raw_unpack<GT_VEC>(ra[u], fa);
            gt_raw_unpack<GT_VEC>(rb[u], fb);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) fa[j] = __bfloat162float(__float2bfloat16_rn(fa[j] + fb[j]));
            gt_store8(res + off + c, fa); /* exactly the rounded sums: the row kernel's input */
            ss = gt_rmsnorm_sumsq8(ss, fa);
        }
    }
    float r = rsqrtf(gt_warp_sum(ss) * inv_c + eps);
    if (lane == 0) rstd[row] = r;
    if (out) norm_row_vec(out + off, res + off, w, r, C, lane);
}

/* W (1 or 8) consecutive bf16 at p + c as floats. */
template <int W> static __device__ __forceinline__ void load_cols(const bf16 *p, int c, float *f) {
    gt_raw_unpack<W>(gt_raw_load<W>(p + c), f);
}

#define BWD_ROWS 4 /* rows a block takes at once: their loads are in flight together */

/* Sums v[0..BWD_ROWS) over the block, in a fixed order; every thread gets the sums. */
static __device__ __forceinline__ void block_sum_rows(float *v, float (*scratch)[32]) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
    for (int k = 0; k < BWD_ROWS; k++) v[k] = gt_warp_sum(v[k]);
    __syncthreads(); /* the previous use of scratch is over */
    if (lane == 0)
#pragma unroll
        for (int k = 0; k < BWD_ROWS; k++) scratch[k][warp] = v[k];
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BWD_ROWS; k++) v[k] = gt_warp_sum(lane < nwarps ? scratch[k][lane] : 0.0f);
}

/* Thread i owns columns [i*W, i*W + W) of every row (the host makes blockDim.x * W >= C), so it
 * keeps (1 + w) and its dw partial in registers. A block takes BWD_ROWS consecutive rows at a time
 * (row groups blockIdx.x, + gridDim.x, ...): it issues the loads of x, dy and dx (the
 * read-modify-write of dx +=) of all of them together, as raw bf16 (12 registers a row), then one
 * block reduction for their dot products, then adds and stores their dx. Nothing waits on a load
 * after the reduction, so the only exposed latency per row group is one round of loads. At the end
 * its dw partial goes to part[blockIdx.x, C]. W = 8 (16-byte accesses) or 1; a template so the
 * arrays stay in registers. A row's dot product is summed within one block in a fixed order, so dx
 * does not depend on the grid; dw's partials do (the grid is fixed per device and shape). */
template <int W>
static __global__ void rmsnorm_bwd_kernel(bf16 *dx, float *part, const bf16 *dout, const bf16 *x,
                                          const bf16 *w, const float *rstd, float inv_c, int N,
                                          int C) {
    __shared__ float scratch[BWD_ROWS][32];
    int c = threadIdx.x * W;
    bool own = c < C;
    float gam[W], dw[W];
#pragma unroll
    for (int j = 0; j < W; j++) gam[j] = dw[j] = 0.0f;
    if (own) load_cols<W>(w, c, gam);
#pragma unroll
    for (int j = 0; j < W; j++) gam[j] += 1.0f;
    for (int n0 = blockIdx.x * BWD_ROWS; n0 < N; n0 += gridDim.x * BWD_ROWS) {
        gt_raw_bf16<W> rx[BWD_ROWS], rg[BWD_ROWS], rd[BWD_ROWS];
        float r[BWD_ROWS], dot[BWD_ROWS];
#pragma unroll
        for (int k = 0; k < BWD_ROWS; k++) {
            int n = n0 + k;
            r[k] = n < N ? rstd[n] : 0.0f;
            if (own && n < N) {
                size_t off = (size_t)n * C + c;
                rx[k] = gt_raw_load<W>(x + off);
                rg[k] = gt_raw_load<W>(dout + off);
                rd[k] = gt_raw_load<W>(dx + off);
            } else {
                rx[k] = rg[k] = rd[k] = gt_raw_zero<W>();
            }
        }
#pragma unroll
        for (int k = 0; k < BWD_ROWS; k++) {
            float fx[W], fg[W];
            gt_raw_unpack<W>(rx[k], fx);
            gt_raw_unpack<W>(rg[k], fg);
            dot[k] = 0.0f;
#pragma unroll
            for (int j = 0; j < W; j++) {
                float xhat = fx[j] * r[k];
                dot[k] += fg[j] * gam[j] * xhat;
                dw[j] += fg[j] * xhat;
            }
        }
        block_sum_rows(dot, scratch);
#pragma unroll
        for (int k = 0; k < BWD_ROWS; k++) {
            int n = n0 + k;
            if (!own || n >= N) continue;
            bf16 *dxr = dx + (size_t)n * C;
            float fx[W], fg[W], fd[W], mean = dot[k] * inv_c;
            gt_raw_unpack<W>(rx[k], fx);
            gt_raw_unpack<W>(rg[k], fg);
            gt_raw_unpack<W>(rd[k], fd);
#pragma unroll
            for (int j = 0; j < W; j++) fd[j] += r[k] * (fg[j] * gam[j] - fx[j] * r[k] * mean);
            if (W == GT_VEC)
                gt_store8(dxr + c, fd);
            else
                dxr[c] = __float2bfloat16_rn(fd[0]);
        }
    }
    if (own)
#pragma unroll
        for (int j = 0; j < W; j++) part[(size_t)blockIdx.x * C + c + j] = dw[j];
}

/* Any C, any alignment: one column at a time, x and dy re-read for dx (from L1/L2). Same
 * partial-row scheme; used only when the row is wider than a block's registers hold. */
static __global__ void rmsnorm_bwd_wide_kernel(bf16 *dx, float *part, const bf16 *dout,
                                               const bf16 *x, const bf16 *w, const float *rstd,
                                               float inv_c, int N, int C) {
    __shared__ float scratch[32];
    float *prow = part + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) prow[c] = 0.0f;
    for (int n = blockIdx.x; n < N; n += gridDim.x) {
        const bf16 *xr = x + (size_t)n * C, *gr = dout + (size_t)n * C;
        bf16 *dxr = dx + (size_t)n * C;
        float r = rstd[n], dot = 0.0f;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float xhat = __bfloat162float(xr[c]) * r, g = __bfloat162float(gr[c]);
            dot += g * (1.0f + __bfloat162float(w[c])) * xhat;
            prow[c] += g * xhat;
        }
        float mean = gt_block_sum(dot, scratch) * inv_c;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float xv = __bfloat162float(xr[c]), g = __bfloat162float(gr[c]);
            float d = r * (g * (1.0f + __bfloat162float(w[c])) - xv * r * mean);
            dxr[c] = __float2bfloat16_rn(__bfloat162float(dxr[c]) + d);
        }
    }
}

#define REDUCE_LANES 32 /* partial rows summed in parallel per column, then combined in order */
#define REDUCE_LOADS 8  /* partial rows a lane loads before adding them: in flight together */

/* dw[C] += sum over b of part[b, C], b = 0..G-1, in a fixed order (dw of the gradients' type G_T).
 * Block: 32 columns x 32 lanes;
 * lane l adds rows l, l + 32, l + 64, ... in that order, REDUCE_LOADS of them loaded at a time
 * (a grid of C / 32 blocks is small: each lane's loads must not wait for each other). */
template <typename G_T>
static __global__ void rmsnorm_dw_reduce_kernel(G_T *dw, const float *part, int G, int C) {
    __shared__ float s[REDUCE_LANES][33];
    int tx = threadIdx.x & 31, lane = threadIdx.x >> 5;
    int col = blockIdx.x * 32 + tx;
    float acc = 0.0f;
    if (col < C)
        for (int b0 = lane; b0 < G; b0 += REDUCE_LANES * REDUCE_LOADS) {
            float v[REDUCE_LOADS];
#pragma unroll
            for (int u = 0; u < REDUCE_LOADS; u++) {
                int b = b0 + u * REDUCE_LANES;
                v[u] = b < G ? part[(size_t)b * C + col] : 0.0f;
            }
#pragma unroll
            for (int u = 0; u < REDUCE_LOADS; u++)
                if (b0 + u * REDUCE_LANES < G) acc += v[u];
        }
    s[lane][tx] = acc;
    __syncthreads();
    if (lane == 0 && col < C) {
        float t = 0.0f;
        for (int k = 0; k < REDUCE_LANES; k++) t += s[k][tx];
        gt_grad_put(dw + col, gt_grad_get(dw + col) + t);
    }
}

/* Rows of at most FWD_BLOCK_MAX_ROWS (a decode step's): one block of FWD_BLOCK_THREADS per row, so
 * that a row costs one round of loads, not a warp's sweep. Thread t holds the 16-byte vectors t,
 * t + FWD_BLOCK_THREADS, .. (at most FWD_BLOCK_VPT: rows up to 8,192 wide) in registers; its partial
 * sum of squares over them in order, then a block sum in a fixed order. ADD: the input is the
 * rounded a + b, stored to res (add_rmsnorm_fwd); otherwise x. Both take the same path for the same
 * rows, so add_rmsnorm_fwd stays bit-identical to add then rmsnorm_fwd, and rstd does not depend on
 * out or its alignment (vec_y: out and w 16-byte aligned; else one element at a time). */
#define FWD_BLOCK_THREADS 256
#define FWD_BLOCK_VPT 4
#define FWD_BLOCK_MAX_ROWS 128

template <bool ADD>
static __global__ void __launch_bounds__(FWD_BLOCK_THREADS)
norm_row_block_kernel(bf16 *out, float *rstd, bf16 *res, const bf16 *x, const bf16 *b, const bf16 *w, float eps,
                      float inv_c, int C, int vec_y) {
    __shared__ float scratch[32];
    size_t off = (size_t)blockIdx.x * C;
    int nv = C / GT_VEC;
    gt_raw_bf16<GT_VEC> rx[FWD_BLOCK_VPT], rb[FWD_BLOCK_VPT];
#pragma unroll
    for (int k = 0; k < FWD_BLOCK_VPT; k++) {
        int v = threadIdx.x + k * FWD_BLOCK_THREADS;
        rx[k] = v < nv ? gt_raw_load<GT_VEC>(x + off + (size_t)v * GT_VEC) : gt_raw_zero<GT_VEC>();
        if (ADD) rb[k] = v < nv ? gt_raw_load<GT_VEC>(b + off + (size_t)v * GT_VEC) : gt_raw_zero<GT_VEC>();
    }
    float f[FWD_BLOCK_VPT][GT_VEC], ss = 0.0f;
#pragma unroll
    for (int k = 0; k < FWD_BLOCK_VPT; k++) {
        int v = threadIdx.x + k * FWD_BLOCK_THREADS;
        if (v >= nv) break;
        gt_raw_unpack<GT_VEC>(rx[k], f[k]);
        if (ADD) {
            float fb[GT_VEC];
            gt_raw_unpack<GT_VEC>(rb[k], fb);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) f[k][j] = __bfloat162float(__float2bfloat16_rn(f[k][j] + fb[j]));
            gt_store8(res + off + (size_t)v * GT_VEC, f[k]);
        }
        ss = gt_rmsnorm_sumsq8(ss, f[k]);
    }
    float r = rsqrtf(gt_block_sum(ss, scratch) * inv_c + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    if (!out) return;
#pragma unroll
    for (int k = 0; k < FWD_BLOCK_VPT; k++) {
        int v = threadIdx.x + k * FWD_BLOCK_THREADS;
        if (v >= nv) break;
        int c = v * GT_VEC;
        if (vec_y) {
            float g[GT_VEC];
            gt_load8(w + c, g);
#pragma unroll
            for (int j = 0; j < GT_VEC; j++) f[k][j] = gt_rmsnorm1(f[k][j], r, g[j]);
            gt_store8(out + off + c, f[k]);
        } else {
#pragma unroll
            for (int j = 0; j < GT_VEC; j++)
                out[off + c + j] = __float2bfloat16_rn(gt_rmsnorm1(f[k][j], r, __bfloat162float(w[c + j])));
        }
    }
}

/* The block-per-row kernel takes N rows of width C read as vectors from x. */
static int rows_by_block(int N, int C, int vec_x) {
    return vec_x && N <= FWD_BLOCK_MAX_ROWS && C <= FWD_BLOCK_THREADS * GT_VEC * FWD_BLOCK_VPT;
}

/* The row kernel; out NULL: rstd only. */
static void launch_fwd(gt_backend *be, bf16 *out, float *rstd, const bf16 *x, const bf16 *w,
                       float eps, int N, int C) {
    int vec_x = C % GT_VEC == 0 && gt_aligned16(x);
    int vec_y = vec_x && gt_aligned16(out) && gt_aligned16(w);
    if (rows_by_block(N, C, vec_x)) {
        norm_row_block_kernel<false><<<N, FWD_BLOCK_THREADS, 0, be->stream>>>(out, rstd, NULL, x, NULL, w, eps,
                                                                              1.0f / (float)C, C, vec_y);
    } else {
        unsigned blocks = (unsigned)((N + FWD_ROWS_PER_BLOCK - 1) / FWD_ROWS_PER_BLOCK);
        rmsnorm_fwd_kernel<<<blocks, 32 * FWD_ROWS_PER_BLOCK, 0, be->stream>>>(
            out, rstd, x, w, eps, 1.0f / (float)C, N, C, vec_x, vec_y);
    }
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_rmsnorm_fwd(gt_backend *be, void *out, void *rstd, const void *x,
                                    const void *w, float eps, int N, int C) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("rmsnorm_fwd");
    launch_fwd(be, (bf16 *)out, (float *)rstd, (const bf16 *)x, (const bf16 *)w, eps, N, C);
    GT_NVTX_POP();
}

/* add_rmsnorm_fwd, out NULL: res and rstd only. Fused where every pointer is 16-byte aligned and
 * C % 8 == 0, else add then the row kernel: the composition either way, bit for bit. */
static void launch_add_fwd(gt_backend *be, bf16 *res, bf16 *out, float *rstd, const bf16 *a,
                           const bf16 *b, const bf16 *w, float eps, int N, int C) {
    int fused = C % GT_VEC == 0 && gt_aligned16(res) && gt_aligned16(a) && gt_aligned16(b) &&
                (!out || (gt_aligned16(out) && gt_aligned16(w)));
    if (fused && rows_by_block(N, C, 1)) { /* the rows rmsnorm_fwd takes by block: the same here */
        norm_row_block_kernel<true><<<N, FWD_BLOCK_THREADS, 0, be->stream>>>(out, rstd, res, a, b, w, eps,
                                                                             1.0f / (float)C, C, 1);
        CUDA_CHECK_LAUNCH();
    } else if (fused) {
        unsigned blocks = (unsigned)((N + FWD_ROWS_PER_BLOCK - 1) / FWD_ROWS_PER_BLOCK);
        add_rmsnorm_fwd_kernel<<<blocks, 32 * FWD_ROWS_PER_BLOCK, 0, be->stream>>>(
            res, out, rstd, a, b, w, eps, 1.0f / (float)C, N, C);
        CUDA_CHECK_LAUNCH();
    } else {
        /* odd widths or alignments: the composition itself */
        gt_cuda_add(be, res, a, b, (size_t)N * C);
        launch_fwd(be, out, rstd, res, w, eps, N, C);
    }
}

extern "C" void gt_cuda_add_rmsnorm_fwd(gt_backend *be, void *res, void *out, void *rstd,
                                        const void *a, const void *b, const void *w, float eps,
                                        int N, int C) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("add_rmsnorm_fwd");
    launch_add_fwd(be, (bf16 *)res, (bf16 *)out, (float *)rstd, (const bf16 *)a, (const bf16 *)b,
                   (const bf16 *)w, eps, N, C);
    GT_NVTX_POP();
}

void gt_cuda_add_rmsnorm_rstd(gt_backend *be, void *res, float *rstd, const void *a, const void *b,
                              float eps, int N, int C) {
    if (N <= 0 || C <= 0) return;
    launch_add_fwd(be, (bf16 *)res, NULL, rstd, (const bf16 *)a, (const bf16 *)b, NULL, eps, N, C);
}

void gt_cuda_rmsnorm_rstd(gt_backend *be, float *rstd, const void *x, float eps, int N, int C) {
    if (N <= 0 || C <= 0) return;
    launch_fwd(be, NULL, rstd, (const bf16 *)x, NULL, eps, N, C);
}

extern "C" void gt_cuda_rmsnorm_bwd(gt_backend *be, void *dx, void *dw, const void *dout,
                                    const void *x, const void *w, const void *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("rmsnorm_bwd");
    int vec = C % GT_VEC == 0 && gt_aligned16(dx) && gt_aligned16(dout) && gt_aligned16(x) &&
              gt_aligned16(w);
    int width = vec ? GT_VEC : 1;
    int threads = (C / width + 31) / 32 * 32;
    int wide = threads > 1024; /* the register-cached kernel needs one column group per thread */
    /* One wave of blocks: as many as are resident at once (the cached kernel's registers decide),
     * at most 4 per SM (each adds a partial row of dw to write and reduce), no more partial rows
     * than row groups or than fit in the workspace. A function of the device and the shape only,
     * so dw's summation order is the same run to run. */
    size_t fit = be->workspace_bytes / ((size_t)C * sizeof(float));
    int per_sm = 2;
    if (!wide)
        CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &per_sm, vec ? rmsnorm_bwd_kernel<GT_VEC> : rmsnorm_bwd_kernel<1>, threads, 0));
    per_sm = per_sm < 1 ? 1 : per_sm > 4 ? 4 : per_sm;
    int G = be->num_sms * per_sm, groups = wide ? N : (N + BWD_ROWS - 1) / BWD_ROWS;
    if (G > groups) G = groups;
    if ((size_t)G > fit) G = (int)fit;
    GT_ASSERT(G >= 1, "rmsnorm_bwd: C=%d too wide for the %zu-byte workspace", C,
              be->workspace_bytes);
    float *part = (float *)be->workspace;
    const bf16 *dy16 = (const bf16 *)dout, *x16 = (const bf16 *)x, *w16 = (const bf16 *)w;
    if (wide)
        rmsnorm_bwd_wide_kernel<<<G, 1024, 0, be->stream>>>(
            (bf16 *)dx, part, dy16, x16, w16, (const float *)rstd, 1.0f / (float)C, N, C);
    else if (vec)
        rmsnorm_bwd_kernel<GT_VEC><<<G, threads, 0, be->stream>>>(
            (bf16 *)dx, part, dy16, x16, w16, (const float *)rstd, 1.0f / (float)C, N, C);
    else
        rmsnorm_bwd_kernel<1><<<G, threads, 0, be->stream>>>(
            (bf16 *)dx, part, dy16, x16, w16, (const float *)rstd, 1.0f / (float)C, N, C);
    CUDA_CHECK_LAUNCH();
    dim3 rgrid((C + 31) / 32), rblock(32 * REDUCE_LANES);
    if (be->grad_bf16)
        rmsnorm_dw_reduce_kernel<<<rgrid, rblock, 0, be->stream>>>((bf16 *)dw, part, G, C);
    else
        rmsnorm_dw_reduce_kernel<<<rgrid, rblock, 0, be->stream>>>((float *)dw, part, G, C);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}
