/* geglu_fwd_fp8 / geglu_bwd_fp8 (kernels/ops.h): GeGLU fused with the FP8 cast and transpose of its
 * output, TransformerEngine-style, so the FP8 model does not write a bf16 tensor only to re-read it
 * for fp8_cast (DESIGN.md §4: fused GeGLU + FP8 cast).
 *
 * The contract is bit-identity with the composition:
 *   geglu_fwd_fp8 == geglu_fwd(h) then fp8_cast(h8, h8t, h, N, F, fmt, scale, amax)
 *   geglu_bwd_fp8 == geglu_bwd(da) then fp8_cast(da8, da8t, da, N, 2F, fmt, scale, amax)
 * so each result is computed with geglu.cu's element math (gelu.cuh), rounded to bf16 (nearest
 * even, the rounding geglu's stores do), converted back to fp32 (exact), and only then goes
 * through fp8_cast's steps (fp8_cvt.cuh: |x| into amax, x * scale, cvt.rn.satfinite).
 *
 * Bytes per element of h (N x F), Gemma-2B: N = 4096 tokens, F = 16384 (ffn 16384 per rank):
 *   forward:  reads gate + up (4), writes h8 + h8t (2)                      =  6  (composition 10)
 *             plus h (2) when the caller still wants the bf16 h
 *   backward: reads dh + gate + up (6), writes da8 + da8t of both halves (4) = 10  (composition 18)
 *             plus da (4) when wanted
 *
 * Two kernels per direction:
 *   tiled    N, F multiples of 16 and 16-byte aligned pointers (every call of the model): the
 *            scheme of fp8_cast.cu's cast_tiled_kernel. A block of 256 threads takes 128 x 128
 *            tiles of h (grid-stride over tiles; one atomic amax per block, gt_block_amax):
 *            phase 1: each thread takes 16 columns of a row of h at a time ("chunk"): 16-byte loads
 *              of gate and up (and dh), the GeGLU math, 16-byte stores of h (or da), the 16 FP8
 *              codes to h8 (one 16-byte store) and into the shared tile;
 *            phase 2 (h8t / da8t only): fp8_tile.cuh's transposed store (byte permutes, 16-byte
 *              stores). The backward has two tiles, dgate's and dup's, stored to rows c and F + c
 *              of da8t.
 *   generic  any shape or alignment, one element of h per thread (odd shapes only; uncoalesced
 *            transpose), with the same element math, so also bit-identical.
 *
 * da may alias a in the backward (as in geglu_bwd): each thread reads its chunk's gate and up
 * before it writes the same elements of da, and no other thread touches them; so no pointer here
 * is __restrict__ and a is read with ordinary (coherent) loads. */
#include "cuda_ops.cuh"
#include "fp8_cvt.cuh"
#include "fp8_tile.cuh"
#include "gelu.cuh"

#define TILE GT_FP8_TILE
#define CHUNKS GT_FP8_CHUNKS
#define THREADS GT_FP8_TILE_THREADS
#define CHUNKS_PER_THREAD GT_FP8_TILE_CHUNKS_PER_THREAD /* 4 chunks of 16 columns per tile */
/* Chunks whose loads a thread issues together before using any: 2 chunks = 128 bytes (forward) or
 * 192 bytes (backward) in flight per thread, 32-48 KB per block, enough to cover HBM latency at
 * 2 blocks per SM without holding all 4 chunks' raw data in registers. */
#define BATCH 2
/* Registers: the GeGLU math and two chunks of raw loads need more than fp8_cast's 64; 2 blocks
 * (16 warps) per SM still keep 64+ KB of loads in flight per SM. */
#define MIN_BLOCKS 2

/* ---- forward ---- */

/* a[N, 2F] = [gate | up] per row -> h[N, F] (may be NULL), h8[N, F], h8t[F, N] (either may be
 * NULL), amax. Tile (r0, c0) covers rows r0.. of h and columns c0.. of h, gate and up. */
template <__nv_fp8_interpretation_t F8, gt_gelu KIND>
static __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
    fwd_tiled_kernel(bf16 *h, uint8_t *h8, uint8_t *h8t, const bf16 *a, int N, int F,
                     const float *scale, float *amax) {
    __shared__ gt_fp8_tile tile;
    const float s = h8 || h8t ? scale[0] : 0.0f;
    const int tiles_c = (F + TILE - 1) / TILE, tiles_r = (N + TILE - 1) / TILE;
    float m = 0.0f;
    for (int t = blockIdx.x; t < tiles_r * tiles_c; t += gridDim.x) {
        const int r0 = (t / tiles_c) * TILE, c0 = (t % tiles_c) * TILE;
        /* chunk id = threadIdx.x + THREADS * k -> tile row id / CHUNKS, chunk id % CHUNKS: a
         * quarter warp covers a row's 8 chunks, 256 contiguous bytes of gate and of up */
#pragma unroll
        for (int k0 = 0; k0 < CHUNKS_PER_THREAD; k0 += BATCH) {
            uint4 g[BATCH][2], u[BATCH][2];
            bool ok[BATCH];
#pragma unroll
            for (int b = 0; b < BATCH; b++) {
                int id = threadIdx.x + THREADS * (k0 + b), r = r0 + id / CHUNKS,
                    c = c0 + (id % CHUNKS) * 16;
                ok[b] = r < N && c < F; /* all 16 columns are in: F % 16 == 0 */
                if (ok[b]) {
                    const bf16 *gate = a + (size_t)r * 2 * F + c;
                    gt_load16_bf16(g[b], gate);
                    gt_load16_bf16(u[b], gate + F);
                }
            }
#pragma unroll
            for (int b = 0; b < BATCH; b++) {
                if (!ok[b]) continue;
                int id = threadIdx.x + THREADS * (k0 + b), tr = id / CHUNKS, ch = id % CHUNKS;
                size_t at = (size_t)(r0 + tr) * F + c0 + ch * 16; /* element of h */
                float v[16], up[16];
                gt_unpack8_bf16(g[b][0], v);
                gt_unpack8_bf16(g[b][1], v + 8);
                gt_unpack8_bf16(u[b][0], up);
                gt_unpack8_bf16(u[b][1], up + 8);
#pragma unroll
                for (int j = 0; j < 16; j++) v[j] = gt_geglu_fwd1(v[j], up[j], KIND);
                uint4 hw[2];
                gt_round_bf16x16(v, hw);
                if (h) gt_store16_bf16(h + at, hw);
                gt_fp8_put16(gt_fp8_cast16<F8>(v, s, m), h8, at, tile, h8t, tr, ch);
            }
        }
        if (h8t) gt_fp8_tile_flush(tile, h8t, r0, c0, N, F);
    }
    gt_block_amax(m, amax);
}

/* Any shape and alignment: element i = (r, c) of h. */
template <__nv_fp8_interpretation_t F8>
static __global__ void fwd_generic_kernel(bf16 *h, uint8_t *h8, uint8_t *h8t, const bf16 *a,
                                          gt_gelu kind, int N, int F, const float *scale,
                                          float *amax) {
    const float s = h8 || h8t ? scale[0] : 0.0f;
    const size_t n = (size_t)N * F, stride = (size_t)gridDim.x * blockDim.x;
    float m = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t r = i / F, c = i % F;
        const bf16 *gate = a + r * 2 * F + c;
        bf16 y = __float2bfloat16_rn(
            gt_geglu_fwd1(__bfloat162float(gate[0]), __bfloat162float(gate[F]), kind));
        if (h) h[i] = y;
        float v = __bfloat162float(y);
        m = gt_absmax(m, v);
        if (!h8 && !h8t) continue;
        uint8_t q = gt_fp8x1<F8>(v * s);
        if (h8) h8[i] = q;
        if (h8t) h8t[c * N + r] = q;
    }
    gt_block_amax(m, amax);
}

template <__nv_fp8_interpretation_t F8>
static void launch_fwd(gt_backend *be, bf16 *h, uint8_t *h8, uint8_t *h8t, const bf16 *a,
                       gt_gelu kind, int N, int F, const float *scale, float *amax) {
    int tiled = N % 16 == 0 && F % 16 == 0 && gt_aligned16(a) && (!h || gt_aligned16(h)) &&
                (!h8 || gt_aligned16(h8)) && (!h8t || gt_aligned16(h8t));
    if (tiled) {
        auto kernel = kind == GT_GELU_TANH ? fwd_tiled_kernel<F8, GT_GELU_TANH>
                                           : fwd_tiled_kernel<F8, GT_GELU_ERF>;
        size_t tiles = (size_t)((N + TILE - 1) / TILE) * (size_t)((F + TILE - 1) / TILE);
        unsigned cap = gt_resident_blocks(be, kernel, THREADS);
        unsigned blocks = tiles < cap ? (unsigned)tiles : cap;
        kernel<<<blocks, THREADS, 0, be->stream>>>(h, h8, h8t, a, N, F, scale, amax);
    } else {
        const int threads = 256;
        unsigned blocks = gt_grid_stride_blocks(be, (size_t)N * F, threads);
        fwd_generic_kernel<F8>
            <<<blocks, threads, 0, be->stream>>>(h, h8, h8t, a, kind, N, F, scale, amax);
    }
    CUDA_CHECK_LAUNCH();
}

/* ---- backward ---- */

/* dh[N, F], a[N, 2F] -> da[N, 2F] (may be NULL; may alias a), da8[N, 2F], da8t[2F, N] (either may
 * be NULL), amax. Tile (r0, c0) covers columns c0.. of h: columns c0.. (dgate) and F + c0.. (dup)
 * of da; rows c0.. and F + c0.. of da8t. */
template <__nv_fp8_interpretation_t F8, gt_gelu KIND>
static __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)
    bwd_tiled_kernel(bf16 *da, uint8_t *da8, uint8_t *da8t, const bf16 *dh, const bf16 *a, int N,
                     int F, const float *scale, float *amax) {
    __shared__ gt_fp8_tile tile_g, tile_u; /* dgate's and dup's codes: 32 KB */
    const float s = da8 || da8t ? scale[0] : 0.0f;
    const int tiles_c = (F + TILE - 1) / TILE, tiles_r = (N + TILE - 1) / TILE;
    float m = 0.0f;
    for (int t = blockIdx.x; t < tiles_r * tiles_c; t += gridDim.x) {
        const int r0 = (t / tiles_c) * TILE, c0 = (t % tiles_c) * TILE;
#pragma unroll
        for (int k0 = 0; k0 < CHUNKS_PER_THREAD; k0 += BATCH) {
            uint4 g[BATCH][2], u[BATCH][2], d[BATCH][2];
            bool ok[BATCH];
#pragma unroll
            for (int b = 0; b < BATCH; b++) {
                int id = threadIdx.x + THREADS * (k0 + b), r = r0 + id / CHUNKS,
                    c = c0 + (id % CHUNKS) * 16;
                ok[b] = r < N && c < F;
                if (ok[b]) {
                    const bf16 *gate = a + (size_t)r * 2 * F + c;
                    gt_load16_bf16(g[b], gate);
                    gt_load16_bf16(u[b], gate + F);
                    gt_load16_bf16(d[b], dh + (size_t)r * F + c);
                }
            }
#pragma unroll
            for (int b = 0; b < BATCH; b++) {
                if (!ok[b]) continue;
                int id = threadIdx.x + THREADS * (k0 + b), tr = id / CHUNKS, ch = id % CHUNKS;
                size_t at = (size_t)(r0 + tr) * 2 * F + c0 + ch * 16; /* dgate's element of da */
                float vg[16], vu[16], vd[16];
                gt_unpack8_bf16(g[b][0], vg);
                gt_unpack8_bf16(g[b][1], vg + 8);
                gt_unpack8_bf16(u[b][0], vu);
                gt_unpack8_bf16(u[b][1], vu + 8);
                gt_unpack8_bf16(d[b][0], vd);
                gt_unpack8_bf16(d[b][1], vd + 8);
#pragma unroll
                for (int j = 0; j < 16; j++) gt_geglu_bwd1(vg[j], vu[j], vd[j], KIND, &vg[j], &vu[j]);
                uint4 wg[2], wu[2];
                gt_round_bf16x16(vg, wg);
                gt_round_bf16x16(vu, wu);
                if (da) gt_store16_bf16(da + at, wg), gt_store16_bf16(da + at + F, wu);
                uint4 qg = gt_fp8_cast16<F8>(vg, s, m), qu = gt_fp8_cast16<F8>(vu, s, m);
                if (da8) *(uint4 *)(da8 + at) = qg, *(uint4 *)(da8 + at + F) = qu;
                if (da8t) {
                    int slot = gt_fp8_tile_slot(tr, ch);
                    tile_g[tr][slot] = qg;
                    tile_u[tr][slot] = qu;
                }
            }
        }
        if (!da8t) continue;
        __syncthreads();
        gt_fp8_tile_store_t(tile_g, da8t, r0, c0, N, F);
        gt_fp8_tile_store_t(tile_u, da8t + (size_t)F * N, r0, c0, N, F);
        __syncthreads(); /* the next tile overwrites the shared tiles */
    }
    gt_block_amax(m, amax);
}

/* Any shape and alignment: element i = (r, c) of h gives columns c and F + c of da. */
template <__nv_fp8_interpretation_t F8>
static __global__ void bwd_generic_kernel(bf16 *da, uint8_t *da8, uint8_t *da8t, const bf16 *dh,
                                          const bf16 *a, gt_gelu kind, int N, int F,
                                          const float *scale, float *amax) {
    const float s = da8 || da8t ? scale[0] : 0.0f;
    const size_t n = (size_t)N * F, stride = (size_t)gridDim.x * blockDim.x;
    float m = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t r = i / F, c = i % F, at = r * 2 * F + c;
        float dg, du;
        gt_geglu_bwd1(__bfloat162float(a[at]), __bfloat162float(a[at + F]),
                      __bfloat162float(dh[i]), kind, &dg, &du);
        bf16 bg = __float2bfloat16_rn(dg), bu = __float2bfloat16_rn(du);
        if (da) da[at] = bg, da[at + F] = bu;
        float vg = __bfloat162float(bg), vu = __bfloat162float(bu);
        m = gt_absmax(gt_absmax(m, vg), vu);
        if (!da8 && !da8t) continue;
        uint8_t qg = gt_fp8x1<F8>(vg * s), qu = gt_fp8x1<F8>(vu * s);
        if (da8) da8[at] = qg, da8[at + F] = qu;
        if (da8t) da8t[c * N + r] = qg, da8t[(F + c) * N + r] = qu;
    }
    gt_block_amax(m, amax);
}

template <__nv_fp8_interpretation_t F8>
static void launch_bwd(gt_backend *be, bf16 *da, uint8_t *da8, uint8_t *da8t, const bf16 *dh,
                       const bf16 *a, gt_gelu kind, int N, int F, const float *scale,
                       float *amax) {
    int tiled = N % 16 == 0 && F % 16 == 0 && gt_aligned16(dh) && gt_aligned16(a) &&
                (!da || gt_aligned16(da)) && (!da8 || gt_aligned16(da8)) &&
                (!da8t || gt_aligned16(da8t));
    if (tiled) {
        auto kernel = kind == GT_GELU_TANH ? bwd_tiled_kernel<F8, GT_GELU_TANH>
                                           : bwd_tiled_kernel<F8, GT_GELU_ERF>;
        size_t tiles = (size_t)((N + TILE - 1) / TILE) * (size_t)((F + TILE - 1) / TILE);
        unsigned cap = gt_resident_blocks(be, kernel, THREADS);
        unsigned blocks = tiles < cap ? (unsigned)tiles : cap;
        kernel<<<blocks, THREADS, 0, be->stream>>>(da, da8, da8t, dh, a, N, F, scale, amax);
    } else {
        const int threads = 256;
        unsigned blocks = gt_grid_stride_blocks(be, (size_t)N * F, threads);
        bwd_generic_kernel<F8>
            <<<blocks, threads, 0, be->stream>>>(da, da8, da8t, dh, a, kind, N, F, scale, amax);
    }
    CUDA_CHECK_LAUNCH();
}

/* ---- entry points ---- */

static void check_args(const char *op, gt_gelu kind, gt_dtype fmt) {
    GT_ASSERT(fmt == GT_E4M3 || fmt == GT_E5M2, "%s: format %s is not an FP8 format", op,
              gt_dtype_name(fmt));
    GT_ASSERT(kind == GT_GELU_TANH || kind == GT_GELU_ERF, "%s: unknown gelu kind %d", op,
              (int)kind);
}

extern "C" void gt_cuda_geglu_fwd_fp8(gt_backend *be, void *h, void *h8, void *h8t, const void *a,
                                      gt_gelu kind, int N, int F, gt_dtype fmt,
                                      const float *scale, float *amax) {
    check_args("geglu_fwd_fp8", kind, fmt);
    if (N <= 0 || F <= 0) return;
    GT_NVTX_PUSH("geglu_fwd_fp8");
    if (fmt == GT_E4M3)
        launch_fwd<__NV_E4M3>(be, (bf16 *)h, (uint8_t *)h8, (uint8_t *)h8t, (const bf16 *)a, kind,
                              N, F, scale, amax);
    else
        launch_fwd<__NV_E5M2>(be, (bf16 *)h, (uint8_t *)h8, (uint8_t *)h8t, (const bf16 *)a, kind,
                              N, F, scale, amax);
    GT_NVTX_POP();
}

extern "C" void gt_cuda_geglu_bwd_fp8(gt_backend *be, void *da, void *da8, void *da8t,
                                      const void *dh, const void *a, gt_gelu kind, int N, int F,
                                      gt_dtype fmt, const float *scale, float *amax) {
    check_args("geglu_bwd_fp8", kind, fmt);
    if (N <= 0 || F <= 0) return;
    GT_NVTX_PUSH("geglu_bwd_fp8");
    if (fmt == GT_E4M3)
        launch_bwd<__NV_E4M3>(be, (bf16 *)da, (uint8_t *)da8, (uint8_t *)da8t, (const bf16 *)dh,
                              (const bf16 *)a, kind, N, F, scale, amax);
    else
        launch_bwd<__NV_E5M2>(be, (bf16 *)da, (uint8_t *)da8, (uint8_t *)da8t, (const bf16 *)dh,
                              (const bf16 *)a, kind, N, F, scale, amax);
    GT_NVTX_POP();
}
