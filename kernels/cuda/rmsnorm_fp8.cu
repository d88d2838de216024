/* rmsnorm_fwd_fp8 (kernels/ops.h): RMSNorm fused with the FP8 cast and transpose of its output,
 * TransformerEngine-style (its layernorm_linear), so the FP8 model does not write the bf16 QKV and
 * fc1 inputs only to re-read them for fp8_cast (DESIGN.md §4: fused casts).
 *
 * The contract is bit-identity with the composition
 *   rmsnorm_fwd(y, rstd, x, w) then fp8_cast(y8, y8t, y, N, C, fmt, scale, amax)
 * so rstd comes from rmsnorm_fwd's own row kernel (gt_cuda_rmsnorm_rstd: the same summation order),
 * each y is rmsnorm.cuh's element expression on the same operands, rounded to bf16 (nearest even,
 * as rmsnorm_fwd's stores round), converted back to fp32 (exact), and only then goes through
 * fp8_cast's steps (fp8_cvt.cuh: |y| into amax, y * scale, cvt.rn.satfinite).
 *
 * Two passes, because every element of a row needs the row's rstd, a reduction over all C columns,
 * while the transposed store wants 128 x 128 tiles:
 *   1. rstd[N]: the row kernel of rmsnorm.cu without its output (one warp per row, reads x);
 *   2. y (if asked), y8, y8t from x, w and rstd:
 *      tiled    N, C multiples of 16 and 16-byte aligned pointers (every call of the model): the
 *               scheme of fp8_cast.cu's cast_tiled_kernel. A block of 256 threads takes 128 x 128
 *               tiles of y (grid-stride over tiles; one atomic amax per block, gt_block_amax):
 *               phase 1: each thread takes 16 columns of a row ("chunk"), 4 rows of the tile apart
 *                 by 32, all in the same 16 columns (so it loads those 16 of w once per tile):
 *                 16-byte loads of x, the normalization, 16-byte stores of y, the 16 FP8 codes to
 *                 y8 (one 16-byte store) and into the shared tile;
 *               phase 2 (y8t only): fp8_tile.cuh's transposed store (byte permutes, 16-byte
 *                 stores).
 *      generic  any shape or alignment, one element of y per thread (odd shapes only; uncoalesced
 *               transpose), with the same element math, so also bit-identical.
 *
 * Bytes per element of y [N, C], Gemma-2B: N = 4096 tokens, C = 2048 (x is 16 MiB):
 *   fused, y NULL (the model's call): pass 1 reads x (2); pass 2 reads x again (2, much of it from
 *     L2: x fits in an H100's 50 MB L2) and writes y8 + y8t (2)               = 6   (composition 8)
 *   fused with y: + 2                                                          = 8   (composition 8:
 *     rmsnorm_fwd reads x and writes y, fp8_cast reads y and writes y8, y8t)
 *
 * No output may alias x or w (as for rmsnorm_fwd); the inputs are read through the read-only path. */
#include "cuda_ops.cuh"
#include "fp8_cuda.h"
#include "fp8_cvt.cuh"
#include "fp8_tile.cuh"
#include "rmsnorm.cuh"

#define TILE GT_FP8_TILE
#define CHUNKS GT_FP8_CHUNKS
#define THREADS GT_FP8_TILE_THREADS
#define CHUNKS_PER_THREAD GT_FP8_TILE_CHUNKS_PER_THREAD /* 4 chunks of 16 columns per tile */
#define ROW_STEP (THREADS / CHUNKS) /* 32: tile rows between a thread's chunks */
/* All 4 chunks' loads (128 bytes of x per thread, 32 KB per block) in flight before any is used,
 * as in cast_tiled_kernel; the normalization adds 16 floats of w and 4 rstd to its registers.
 * 3 blocks (24 warps) per SM: ~96 KB of loads in flight per SM, at most 80 registers a thread
 * (ptxas for sm_90a uses 80, no spills). */
#define MIN_BLOCKS 3

static_assert(THREADS % CHUNKS == 0, "a thread's chunks must share their columns");

/* x[N, C], w[C], rstd[N] -> y[N, C] (may be NULL), y8[N, C], y8t[C, N] (either may be NULL), amax.
 * Tile (r0, c0) covers rows r0.. and columns c0.. of x and y. */
template <__nv_fp8_interpretation_t F8>
static __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
    fwd_tiled_kernel(bf16 *y, uint8_t *y8, uint8_t *y8t, const bf16 *__restrict__ x,
                     const bf16 *__restrict__ w, const float *__restrict__ rstd, int N, int C,
                     const float *scale, float *amax) {
    __shared__ gt_fp8_tile tile;
    const float s = y8 || y8t ? scale[0] : 0.0f;
    const int tiles_c = (C + TILE - 1) / TILE, tiles_r = (N + TILE - 1) / TILE;
    /* chunk id = threadIdx.x + THREADS * k -> tile row id / CHUNKS = tr0 + ROW_STEP * k, chunk
     * id % CHUNKS = ch for every k; a quarter warp covers a row's 8 chunks (256 bytes of x) */
    const int ch = threadIdx.x % CHUNKS, tr0 = threadIdx.x / CHUNKS;
    float m = 0.0f;
    for (int t = blockIdx.x; t < tiles_r * tiles_c; t += gridDim.x) {
        const int r0 = (t / tiles_c) * TILE, c0 = (t % tiles_c) * TILE, c = c0 + ch * 16;
        const bool col_in = c < C; /* all 16 columns are in or out: C % 16 == 0 */
        uint4 raw[CHUNKS_PER_THREAD][2], wq[2] = {};
        float r[CHUNKS_PER_THREAD];
        bool ok[CHUNKS_PER_THREAD];
        if (col_in) gt_load16_bf16(wq, w + c);
#pragma unroll
        for (int k = 0; k < CHUNKS_PER_THREAD; k++) {
            int row = r0 + tr0 + ROW_STEP * k;
            ok[k] = col_in && row < N;
            r[k] = 0.0f;
            if (ok[k]) {
                gt_load16_bf16(raw[k], x + (size_t)row * C + c);
                r[k] = rstd[row];
            }
        }
        float g[16];
        gt_unpack8_bf16(wq[0], g);
        gt_unpack8_bf16(wq[1], g + 8);
#pragma unroll
        for (int k = 0; k < CHUNKS_PER_THREAD; k++) {
            if (!ok[k]) continue;
            const int tr = tr0 + ROW_STEP * k;
            const size_t at = (size_t)(r0 + tr) * C + c; /* element of x and y */
            float v[16];
            gt_unpack8_bf16(raw[k][0], v);
            gt_unpack8_bf16(raw[k][1], v + 8);
#pragma unroll
            for (int j = 0; j < 16; j++) v[j] = gt_rmsnorm1(v[j], r[k], g[j]);
            uint4 yw[2];
            gt_round_bf16x16(v, yw);
            if (y) gt_store16_bf16(y + at, yw);
            gt_fp8_put16(gt_fp8_cast16<F8>(v, s, m), y8, at, tile, y8t, tr, ch);
        }
        if (y8t) gt_fp8_tile_flush(tile, y8t, r0, c0, N, C);
    }
    gt_block_amax(m, amax);
}

/* Any shape and alignment: element i = (r, c) of y. */
template <__nv_fp8_interpretation_t F8>
static __global__ void fwd_generic_kernel(bf16 *y, uint8_t *y8, uint8_t *y8t,
                                          const bf16 *__restrict__ x, const bf16 *__restrict__ w,
                                          const float *__restrict__ rstd, int N, int C,
                                          const float *scale, float *amax) {
    const float s = y8 || y8t ? scale[0] : 0.0f;
    const size_t n = (size_t)N * C, stride = (size_t)gridDim.x * blockDim.x;
    float m = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t r = i / C, c = i % C;
        bf16 b = __float2bfloat16_rn(
            gt_rmsnorm1(__bfloat162float(x[i]), rstd[r], __bfloat162float(w[c])));
        if (y) y[i] = b;
        float v = __bfloat162float(b);
        m = gt_absmax(m, v);
        if (!y8 && !y8t) continue;
        uint8_t q = gt_fp8x1<F8>(v * s);
        if (y8) y8[i] = q;
        if (y8t) y8t[c * N + r] = q;
    }
    gt_block_amax(m, amax);
}

template <__nv_fp8_interpretation_t F8>
static void launch(gt_backend *be, bf16 *y, uint8_t *y8, uint8_t *y8t, const bf16 *x,
                   const bf16 *w, const float *rstd, int N, int C, const float *scale,
                   float *amax) {
    int tiled = N % 16 == 0 && C % 16 == 0 && gt_aligned16(x) && gt_aligned16(w) &&
                (!y || gt_aligned16(y)) && (!y8 || gt_aligned16(y8)) &&
                (!y8t || gt_aligned16(y8t));
    if (tiled) {
        size_t tiles = (size_t)((N + TILE - 1) / TILE) * (size_t)((C + TILE - 1) / TILE);
        unsigned cap = gt_resident_blocks(be, fwd_tiled_kernel<F8>, THREADS);
        unsigned blocks = tiles < cap ? (unsigned)tiles : cap;
        fwd_tiled_kernel<F8>
            <<<blocks, THREADS, 0, be->stream>>>(y, y8, y8t, x, w, rstd, N, C, scale, amax);
    } else {
        const int threads = 256;
        unsigned blocks = gt_grid_stride_blocks(be, (size_t)N * C, threads);
        fwd_generic_kernel<F8>
            <<<blocks, threads, 0, be->stream>>>(y, y8, y8t, x, w, rstd, N, C, scale, amax);
    }
    CUDA_CHECK_LAUNCH();
}

/* Pass 2 (y, y8, y8t from x, w and rstd) in the format's instantiation. */
static void cast_pass(gt_backend *be, void *y, void *y8, void *y8t, const void *rstd, const void *x,
                      const void *w, int N, int C, gt_dtype fmt, const float *scale, float *amax) {
    if (fmt == GT_E4M3)
        launch<__NV_E4M3>(be, (bf16 *)y, (uint8_t *)y8, (uint8_t *)y8t, (const bf16 *)x,
                          (const bf16 *)w, (const float *)rstd, N, C, scale, amax);
    else
        launch<__NV_E5M2>(be, (bf16 *)y, (uint8_t *)y8, (uint8_t *)y8t, (const bf16 *)x,
                          (const bf16 *)w, (const float *)rstd, N, C, scale, amax);
}

extern "C" void gt_cuda_rmsnorm_fwd_fp8(gt_backend *be, void *y, void *y8, void *y8t, void *rstd,
                                        const void *x, const void *w, float eps, int N, int C,
                                        gt_dtype fmt, const float *scale, float *amax) {
    GT_ASSERT(fmt == GT_E4M3 || fmt == GT_E5M2, "rmsnorm_fwd_fp8: format %s is not an FP8 format",
              gt_dtype_name(fmt));
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("rmsnorm_fwd_fp8");
    gt_cuda_rmsnorm_rstd(be, (float *)rstd, x, eps, N, C);
    cast_pass(be, y, y8, y8t, rstd, x, w, N, C, fmt, scale, amax);
    GT_NVTX_POP();
}

/* add_rmsnorm_fwd_fp8: pass 1 is the fused residual add (rmsnorm.cu: res and rstd, bit-identical
 * to add then pass 1 above), pass 2 the same cast pass over res. */
extern "C" void gt_cuda_add_rmsnorm_fwd_fp8(gt_backend *be, void *res, void *y, void *y8, void *y8t,
                                            void *rstd, const void *a, const void *b,
                                            const void *w, float eps, int N, int C, gt_dtype fmt,
                                            const float *scale, float *amax) {
    GT_ASSERT(fmt == GT_E4M3 || fmt == GT_E5M2,
              "add_rmsnorm_fwd_fp8: format %s is not an FP8 format", gt_dtype_name(fmt));
    if (N <= 0 || C <= 0) return;
    GT_NVTX_PUSH("add_rmsnorm_fwd_fp8");
    gt_cuda_add_rmsnorm_rstd(be, res, (float *)rstd, a, b, eps, N, C);
    cast_pass(be, y, y8, y8t, rstd, res, w, N, C, fmt, scale, amax);
    GT_NVTX_POP();
}
