/* fp8_cast (kernels/ops.h): bf16 in[rows, cols] -> FP8 out[rows, cols] = fp8(in * scale[0]) and/or
 * its transpose out_t[cols, rows], and amax[0] = max(amax[0], max |in|) (pre-scale).
 *
 * Hopper's FP8 GEMMs take both operands K-contiguous, so the weight gradient needs the transposed
 * copies of the input and of the output gradient; the transpose is fused into the cast (DESIGN.md
 * §4), never a separate pass. Three kernels:
 *
 *   tiled    rows, cols multiples of 16 and 16-byte aligned pointers (every call of the model).
 *            A block takes 128 x 128 tiles (grid-stride over tiles, one atomic per block):
 *            phase 1: each thread loads 16 bf16 of a row (two 16-byte loads), converts them, stores
 *              the 16 codes to out (one 16-byte store) and into the shared tile;
 *            phase 2 (out_t only): the tile's transposed store of fp8_tile.cuh (byte permutes,
 *              16-byte stores; shared with the fused GeGLU casts of geglu_fp8.cu).
 *   generic  any shape or alignment, one element per thread (odd shapes only; slow transpose).
 *   amax     both outputs NULL: only the reduction (calibration, and BF16 GEMMs' amax).
 *
 * Conversion: the hardware cvt.rn.satfinite (fp8_cvt.cuh), bit-identical to kernels/fp8.c. */
#include "cuda_ops.cuh"
#include "fp8_cuda.h"
#include "fp8_cvt.cuh"
#include "fp8_tile.cuh"

#define TILE GT_FP8_TILE
#define CHUNKS GT_FP8_CHUNKS
#define CAST_THREADS GT_FP8_TILE_THREADS
#define LOADS GT_FP8_TILE_CHUNKS_PER_THREAD /* row chunks per thread in phase 1: 4 */

template <__nv_fp8_interpretation_t F>
static __global__ void __launch_bounds__(CAST_THREADS, 4) /* 64 registers: 4 blocks per SM */
    cast_tiled_kernel(uint8_t *out, uint8_t *out_t, const bf16 *in, int rows, int cols,
                      const float *scale, float *amax) {
    __shared__ gt_fp8_tile tile;
    const float s = scale[0];
    const int tiles_c = (cols + TILE - 1) / TILE, tiles_r = (rows + TILE - 1) / TILE;
    float m = 0.0f;
    for (int t = blockIdx.x; t < tiles_r * tiles_c; t += gridDim.x) {
        const int r0 = (t / tiles_c) * TILE, c0 = (t % tiles_c) * TILE;
        /* phase 1: chunk id = threadIdx.x + CAST_THREADS * k -> tile row id / CHUNKS, chunk
         * id % CHUNKS; a quarter warp covers one row's 8 chunks (256 contiguous bytes of in). */
        uint4 raw[LOADS][2]; /* 16 bf16 per chunk, all loads in flight before any is used */
        bool ok[LOADS];
#pragma unroll
        for (int k = 0; k < LOADS; k++) {
            int id = threadIdx.x + CAST_THREADS * k, r = r0 + id / CHUNKS,
                c = c0 + (id % CHUNKS) * 16;
            ok[k] = r < rows && c < cols; /* all 16 columns are in: cols % 16 == 0 */
            if (ok[k]) {
                const uint4 *p = (const uint4 *)(in + (size_t)r * cols + c);
                raw[k][0] = p[0];
                raw[k][1] = p[1];
            }
        }
#pragma unroll
        for (int k = 0; k < LOADS; k++) {
            if (!ok[k]) continue;
            int id = threadIdx.x + CAST_THREADS * k, tr = id / CHUNKS, ch = id % CHUNKS;
            float v[16];
            gt_unpack8_bf16(raw[k][0], v);
            gt_unpack8_bf16(raw[k][1], v + 8);
            gt_fp8_put16(gt_fp8_cast16<F>(v, s, m), out, (size_t)(r0 + tr) * cols + c0 + ch * 16, tile, out_t,
                         tr, ch);
        }
        if (out_t) gt_fp8_tile_flush(tile, out_t, r0, c0, rows, cols);
    }
    gt_block_amax(m, amax);
}

/* Any shape and alignment: element i = (r, c) of the row-major input; out_t written one byte at a
 * time (uncoalesced, fine for the odd shapes that land here). */
template <__nv_fp8_interpretation_t F>
static __global__ void cast_generic_kernel(uint8_t *out, uint8_t *out_t, const bf16 *in, int rows,
                                           int cols, const float *scale, float *amax) {
    const float s = scale[0];
    const size_t n = (size_t)rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    float m = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = __bfloat162float(in[i]);
        m = gt_absmax(m, v);
        uint8_t q = gt_fp8x1<F>(v * s);
        if (out) out[i] = q;
        if (out_t) out_t[(i % cols) * rows + i / cols] = q;
    }
    gt_block_amax(m, amax);
}

#define AMAX_UNROLL 4 /* groups a thread has in flight at once */

/* amax only. W = 8: 16-byte loads (in aligned, n % 8 == 0); W = 1 otherwise. Each grid-stride
 * step issues AMAX_UNROLL loads before using any (a read-only stream needs bytes in flight). */
template <int W> static __global__ void amax_kernel(const bf16 *in, size_t n, float *amax) {
    const size_t groups = n / W, stride = (size_t)gridDim.x * blockDim.x;
    float m = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < groups;
         i += AMAX_UNROLL * stride) {
        float f[AMAX_UNROLL][W];
#pragma unroll
        for (int u = 0; u < AMAX_UNROLL; u++) {
            size_t g = i + u * stride;
#pragma unroll
            for (int j = 0; j < W; j++) f[u][j] = 0.0f;
            if (g >= groups) continue;
            if (W == GT_VEC)
                gt_load8(in + g * W, f[u]);
            else
                f[u][0] = __bfloat162float(in[g]);
        }
#pragma unroll
        for (int u = 0; u < AMAX_UNROLL; u++)
#pragma unroll
            for (int j = 0; j < W; j++) m = gt_absmax(m, f[u][j]);
    }
    gt_block_amax(m, amax);
}

template <__nv_fp8_interpretation_t F>
static void launch_cast(gt_backend *be, uint8_t *out, uint8_t *out_t, const bf16 *in, int rows,
                        int cols, const float *scale, float *amax) {
    int tiled = rows % 16 == 0 && cols % 16 == 0 && gt_aligned16(in) &&
                (!out || gt_aligned16(out)) && (!out_t || gt_aligned16(out_t));
    if (tiled) {
        size_t tiles = (size_t)((rows + TILE - 1) / TILE) * (size_t)((cols + TILE - 1) / TILE);
        unsigned cap = gt_resident_blocks(be, cast_tiled_kernel<F>, CAST_THREADS);
        unsigned blocks = tiles < cap ? (unsigned)tiles : cap;
        cast_tiled_kernel<F>
            <<<blocks, CAST_THREADS, 0, be->stream>>>(out, out_t, in, rows, cols, scale, amax);
    } else {
        const int threads = 256;
        unsigned blocks = gt_grid_stride_blocks(be, (size_t)rows * cols, threads);
        cast_generic_kernel<F>
            <<<blocks, threads, 0, be->stream>>>(out, out_t, in, rows, cols, scale, amax);
    }
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_fp8_cast(gt_backend *be, void *out, void *out_t, const void *in, int rows,
                                 int cols, gt_dtype fmt, const float *scale, float *amax) {
    GT_ASSERT(fmt == GT_E4M3 || fmt == GT_E5M2, "fp8_cast: format %s is not an FP8 format",
              gt_dtype_name(fmt));
    if (rows <= 0 || cols <= 0) return;
    GT_NVTX_PUSH("fp8_cast");
    const bf16 *x = (const bf16 *)in;
    if (!out && !out_t) {
        if (amax) {
            size_t n = (size_t)rows * cols;
            int vec = n % GT_VEC == 0 && gt_aligned16(in);
            const int threads = 256;
            unsigned blocks =
                gt_grid_stride_blocks(be, (vec ? n / GT_VEC : n) / AMAX_UNROLL + 1, threads);
            if (vec)
                amax_kernel<GT_VEC><<<blocks, threads, 0, be->stream>>>(x, n, amax);
            else
                amax_kernel<1><<<blocks, threads, 0, be->stream>>>(x, n, amax);
            CUDA_CHECK_LAUNCH();
        }
    } else if (fmt == GT_E4M3) {
        launch_cast<__NV_E4M3>(be, (uint8_t *)out, (uint8_t *)out_t, x, rows, cols, scale, amax);
    } else {
        launch_cast<__NV_E5M2>(be, (uint8_t *)out, (uint8_t *)out_t, x, rows, cols, scale, amax);
    }
    GT_NVTX_POP();
}

/* ---- the conversion alone, for tests: float in[n] -> FP8 out[n], no scale, no amax ---- */

template <__nv_fp8_interpretation_t F>
static __global__ void convert_kernel(uint8_t *out, const float *in, size_t n) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = gt_fp8x1<F>(in[i]);
}

/* Pairs through the x2 instruction the cast kernels use (gt_fp8x4), so the test exercises it. */
template <__nv_fp8_interpretation_t F>
static __global__ void convert4_kernel(uint32_t *out, const float4 *in, size_t n4) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
        float4 v = in[i];
        out[i] = gt_fp8x4<F>(v.x, v.y, v.z, v.w);
    }
}

extern "C" void gt_cuda_fp8_convert(gt_backend *be, void *out, const float *in, size_t n,
                                    gt_dtype fmt) {
    GT_ASSERT(fmt == GT_E4M3 || fmt == GT_E5M2, "fp8_convert: format %s is not an FP8 format",
              gt_dtype_name(fmt));
    if (n == 0) return;
    const int threads = 256;
    int vec = n % 4 == 0 && gt_aligned16(in) && ((uintptr_t)out & 3u) == 0;
    unsigned blocks = gt_grid_stride_blocks(be, vec ? n / 4 : n, threads);
    if (vec && fmt == GT_E4M3)
        convert4_kernel<__NV_E4M3>
            <<<blocks, threads, 0, be->stream>>>((uint32_t *)out, (const float4 *)in, n / 4);
    else if (vec)
        convert4_kernel<__NV_E5M2>
            <<<blocks, threads, 0, be->stream>>>((uint32_t *)out, (const float4 *)in, n / 4);
    else if (fmt == GT_E4M3)
        convert_kernel<__NV_E4M3><<<blocks, threads, 0, be->stream>>>((uint8_t *)out, in, n);
    else
        convert_kernel<__NV_E5M2><<<blocks, threads, 0, be->stream>>>((uint8_t *)out, in, n);
    CUDA_CHECK_LAUNCH();
}
