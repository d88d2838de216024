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
 *            phase 2 (out_t only): each thread reads 16 rows x 4 columns of the tile as 16 32-bit
 *              words, transposes the 4x4 byte blocks with byte permutes, and stores 4 columns'
 *              16 consecutive rows: four 16-byte stores. A warp writes 128 contiguous bytes to
 *              each of 4 rows of out_t.
 *            The tile is [128 rows][8 chunks of 16 bytes]; chunk k of row r is kept at slot
 *            k ^ ((r / 16) % 8), so both phases hit 32 distinct banks per access.
 *   generic  any shape or alignment, one element per thread (odd shapes only; slow transpose).
 *   amax     both outputs NULL: only the reduction (calibration, and BF16 GEMMs' amax).
 *
 * Conversion: the hardware cvt.rn.satfinite (fp8_cvt.cuh), bit-identical to kernels/fp8.c. */
#include "cuda_ops.cuh"
#include "fp8_cuda.h"
#include "fp8_cvt.cuh"

#define TILE 128 /* rows and columns of a tile */
#define CHUNKS (TILE / 16) /* 16-byte chunks of FP8 codes per tile row */
#define CAST_THREADS 256 /* 8 warps */
#define LOADS (TILE * CHUNKS / CAST_THREADS) /* row chunks per thread in phase 1: 4 */

/* 8 bf16 packed in a 16-byte word -> floats (exact). The tiled kernel keeps its loads packed
 * until it converts them: half the registers of floats, so more tiles are in flight per SM. */
static __device__ __forceinline__ void unpack8(uint4 u, float f[8]) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

/* Column j (0..3) of the 4x4 byte block whose rows are the words a, b, c, d, as one word with
 * a's byte lowest. __byte_perm(x, y, s): result byte i = byte s[i] of the 8 bytes {y:x}. */
static __device__ __forceinline__ void transpose4x4(uint32_t a, uint32_t b, uint32_t c, uint32_t d,
                                                    uint32_t col[4]) {
    uint32_t ab_lo = __byte_perm(a, b, 0x5140), ab_hi = __byte_perm(a, b, 0x7362); /* a0 b0 a1 b1 */
    uint32_t cd_lo = __byte_perm(c, d, 0x5140), cd_hi = __byte_perm(c, d, 0x7362); /* c0 d0 c1 d1 */
    col[0] = __byte_perm(ab_lo, cd_lo, 0x5410); /* a0 b0 c0 d0 */
    col[1] = __byte_perm(ab_lo, cd_lo, 0x7632);
    col[2] = __byte_perm(ab_hi, cd_hi, 0x5410);
    col[3] = __byte_perm(ab_hi, cd_hi, 0x7632);
}

template <__nv_fp8_interpretation_t F>
static __global__ void __launch_bounds__(CAST_THREADS, 4) /* 64 registers: 4 blocks per SM */
    cast_tiled_kernel(uint8_t *out, uint8_t *out_t, const bf16 *in, int rows, int cols,
                      const float *scale, float *amax) {
    __shared__ uint4 tile[TILE][CHUNKS];
    const float s = scale[0];
    const int tiles_c = (cols + TILE - 1) / TILE, tiles_r = (rows + TILE - 1) / TILE;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
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
            unpack8(raw[k][0], v);
            unpack8(raw[k][1], v + 8);
#pragma unroll
            for (int j = 0; j < 16; j++) {
                m = gt_absmax(m, v[j]);
                v[j] *= s;
            }
            uint4 q = gt_fp8x16<F>(v);
            if (out) *(uint4 *)(out + (size_t)(r0 + tr) * cols + c0 + ch * 16) = q;
            if (out_t) tile[tr][ch ^ ((tr >> 4) & 7)] = q;
        }
        if (!out_t) continue;
        __syncthreads();
        /* phase 2: lane -> row group rg (16 rows), warp and lane -> word column w (4 columns) */
        const int rg = lane & 7, w = warp * 4 + (lane >> 3);
        const int slot = (w >> 2) ^ rg; /* the swizzled chunk; every row of the group agrees */
        uint32_t word[16];
#pragma unroll
        for (int i = 0; i < 16; i++) word[i] = ((const uint32_t *)&tile[rg * 16 + i][slot])[w & 3];
        uint32_t col[4][4]; /* [rows 4g..4g+3][column j] */
#pragma unroll
        for (int g = 0; g < 4; g++)
            transpose4x4(word[4 * g], word[4 * g + 1], word[4 * g + 2], word[4 * g + 3], col[g]);
        const int r = r0 + rg * 16;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int c = c0 + w * 4 + j;
            if (c < cols && r < rows) /* rows % 16 == 0: the 16-row group is all in or all out */
                *(uint4 *)(out_t + (size_t)c * rows + r) =
                    make_uint4(col[0][j], col[1][j], col[2][j], col[3][j]);
        }
        __syncthreads(); /* the next tile overwrites the shared tile */
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

/* Blocks that fit on the chip at once for `kernel` (a grid-stride kernel needs no more). */
template <typename K> static unsigned resident_blocks(gt_backend *be, K kernel, int threads) {
    int per_sm = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0));
    if (per_sm < 1) per_sm = 1;
    return (unsigned)(per_sm * be->num_sms);
}

template <__nv_fp8_interpretation_t F>
static void launch_cast(gt_backend *be, uint8_t *out, uint8_t *out_t, const bf16 *in, int rows,
                        int cols, const float *scale, float *amax) {
    int tiled = rows % 16 == 0 && cols % 16 == 0 && gt_aligned16(in) &&
                (!out || gt_aligned16(out)) && (!out_t || gt_aligned16(out_t));
    if (tiled) {
        size_t tiles = (size_t)((rows + TILE - 1) / TILE) * (size_t)((cols + TILE - 1) / TILE);
        unsigned cap = resident_blocks(be, cast_tiled_kernel<F>, CAST_THREADS);
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
