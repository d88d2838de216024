/* The 128 x 128 FP8 tile of the tiled cast kernels (fp8_cast.cu's cast_tiled_kernel and the fused
 * casts of geglu_fp8.cu and rmsnorm_fp8.cu): the packed-bf16 loads, stores, unpack and rounding,
 * the shared-memory layout of a tile of FP8 codes, and its transposed store. A header so that every
 * tiled cast (plain, fused with GeGLU, fused with RMSNorm) writes the transpose with the same code.
 *
 * A block has GT_FP8_TILE_THREADS = 256 threads and works on tiles of 128 rows x 128 columns of a
 * row-major [rows, cols] tensor (rows, cols multiples of 16):
 *   phase 1 (the caller): each thread converts 16 consecutive columns of a row (one "chunk") into
 *     16 FP8 codes, one 16-byte word, and keeps it in the shared tile at gt_fp8_tile_slot();
 *   phase 2 (gt_fp8_tile_store_t): each thread reads 16 rows x 4 columns of the tile as 16 32-bit
 *     words, transposes the 4x4 byte blocks with byte permutes, and stores 4 columns' 16
 *     consecutive rows of out_t[cols, rows]: four 16-byte stores. A warp writes 128 contiguous
 *     bytes to each of 4 rows of out_t.
 * The tile is [128 rows][8 chunks of 16 bytes]; chunk k of row r is kept at slot k ^ ((r / 16) % 8),
 * so both phases hit 32 distinct banks per access. */
#ifndef GT_FP8_TILE_CUH
#define GT_FP8_TILE_CUH

#include <stdint.h>

#include "cuda_common.cuh"

#define GT_FP8_TILE 128                      /* rows and columns of a tile */
#define GT_FP8_CHUNKS (GT_FP8_TILE / 16)     /* 16-byte chunks of FP8 codes per tile row: 8 */
#define GT_FP8_TILE_THREADS 256              /* 8 warps; phase 2's mapping needs exactly this */
#define GT_FP8_TILE_CHUNKS_PER_THREAD (GT_FP8_TILE * GT_FP8_CHUNKS / GT_FP8_TILE_THREADS) /* 4 */

typedef uint4 gt_fp8_tile[GT_FP8_TILE][GT_FP8_CHUNKS]; /* 16 KB of shared memory */

/* 8 bf16 packed in a 16-byte word -> floats (exact). The tiled kernels keep their loads packed
 * until they convert them: half the registers of floats, so more tiles are in flight per SM. */
static __device__ __forceinline__ void gt_unpack8_bf16(uint4 u, float f[8]) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

/* Two 16-byte words at p (16 bf16, 16-byte aligned): a chunk's raw loads and stores. */
static __device__ __forceinline__ void gt_load16_bf16(uint4 w[2], const __nv_bfloat16 *p) {
    w[0] = ((const uint4 *)p)[0];
    w[1] = ((const uint4 *)p)[1];
}
static __device__ __forceinline__ void gt_store16_bf16(__nv_bfloat16 *p, const uint4 w[2]) {
    ((uint4 *)p)[0] = w[0];
    ((uint4 *)p)[1] = w[1];
}

/* fp32 -> bf16 pair (nearest even) as one 32-bit word, the low half first: what gt_store8 stores
 * (the same __floats2bfloat162_rn). */
static __device__ __forceinline__ uint32_t gt_bf16x2_bits(float lo, float hi) {
    union {
        __nv_bfloat162 h;
        uint32_t u;
    } c;
    c.h = __floats2bfloat162_rn(lo, hi);
    return c.u;
}

/* Rounds a fused kernel's 16 fp32 results to bf16 as the unfused op's stores do: w[2] gets the
 * packed bf16 (what a store of the bf16 output writes) and v the rounded values back in fp32
 * (exact; what fp8_cast would read from that output). */
static __device__ __forceinline__ void gt_round_bf16x16(float v[16], uint4 w[2]) {
    uint32_t p[8];
#pragma unroll
    for (int i = 0; i < 8; i++) p[i] = gt_bf16x2_bits(v[2 * i], v[2 * i + 1]);
    w[0] = make_uint4(p[0], p[1], p[2], p[3]);
    w[1] = make_uint4(p[4], p[5], p[6], p[7]);
    gt_unpack8_bf16(w[0], v);
    gt_unpack8_bf16(w[1], v + 8);
}

/* Slot of chunk ch (0..7) of tile row tr (0..127) in the shared tile (the bank swizzle). */
static __device__ __forceinline__ int gt_fp8_tile_slot(int tr, int ch) {
    return ch ^ ((tr >> 4) & 7);
}

/* Column j (0..3) of the 4x4 byte block whose rows are the words a, b, c, d, as one word with
 * a's byte lowest. __byte_perm(x, y, s): result byte i = byte s[i] of the 8 bytes {y:x}. */
static __device__ __forceinline__ void gt_transpose4x4(uint32_t a, uint32_t b, uint32_t c,
                                                       uint32_t d, uint32_t col[4]) {
    uint32_t ab_lo = __byte_perm(a, b, 0x5140), ab_hi = __byte_perm(a, b, 0x7362); /* a0 b0 a1 b1 */
    uint32_t cd_lo = __byte_perm(c, d, 0x5140), cd_hi = __byte_perm(c, d, 0x7362); /* c0 d0 c1 d1 */
    col[0] = __byte_perm(ab_lo, cd_lo, 0x5410); /* a0 b0 c0 d0 */
    col[1] = __byte_perm(ab_lo, cd_lo, 0x7632);
    col[2] = __byte_perm(ab_hi, cd_hi, 0x5410);
    col[3] = __byte_perm(ab_hi, cd_hi, 0x7632);
}

/* Phase 2: the tile at (r0, c0) of a [rows, cols] tensor -> out_t[cols, rows] (its rows c0.. of
 * length rows). Every thread of the 256 must call; the caller puts a __syncthreads() between
 * phase 1 and this, and another before phase 1 of the next tile overwrites the tile.
 * rows % 16 == 0: a 16-row group is all in or all out. */
static __device__ __forceinline__ void gt_fp8_tile_store_t(const gt_fp8_tile &tile, uint8_t *out_t,
                                                           int r0, int c0, int rows, int cols) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    /* lane -> row group rg (16 rows), warp and lane -> word column w (4 columns) */
    const int rg = lane & 7, w = warp * 4 + (lane >> 3);
    const int slot = (w >> 2) ^ rg; /* the swizzled chunk; every row of the group agrees */
    uint32_t word[16];
#pragma unroll
    for (int i = 0; i < 16; i++) word[i] = ((const uint32_t *)&tile[rg * 16 + i][slot])[w & 3];
    uint32_t col[4][4]; /* [rows 4g..4g+3][column j] */
#pragma unroll
    for (int g = 0; g < 4; g++)
        gt_transpose4x4(word[4 * g], word[4 * g + 1], word[4 * g + 2], word[4 * g + 3], col[g]);
    const int r = r0 + rg * 16;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int c = c0 + w * 4 + j;
        if (c < cols && r < rows)
            *(uint4 *)(out_t + (size_t)c * rows + r) =
                make_uint4(col[0][j], col[1][j], col[2][j], col[3][j]);
    }
}

/* Phase 1's store of a chunk's 16 codes q (tile row tr, chunk ch): to the row-major copy at
 * out + at (if out) and into the shared tile (if the transposed copy out_t is wanted). */
static __device__ __forceinline__ void gt_fp8_put16(uint4 q, uint8_t *out, size_t at, gt_fp8_tile &tile,
                                                    const uint8_t *out_t, int tr, int ch) {
    if (out) *(uint4 *)(out + at) = q;
    if (out_t) tile[tr][gt_fp8_tile_slot(tr, ch)] = q;
}

/* Phase 2 between the barriers it needs: every phase-1 store into the tile is done before it, and
 * the tile is read out before the next tile's phase 1 overwrites it. Every thread of the block
 * calls it. */
static __device__ __forceinline__ void gt_fp8_tile_flush(const gt_fp8_tile &tile, uint8_t *out_t, int r0,
                                                         int c0, int rows, int cols) {
    __syncthreads();
    gt_fp8_tile_store_t(tile, out_t, r0, c0, rows, cols);
    __syncthreads();
}

/* Blocks that fit on the chip at once for `kernel` (a grid-stride kernel needs no more). */
template <typename K>
static unsigned gt_resident_blocks(const gt_backend *be, K kernel, int threads) {
    int per_sm = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0));
    if (per_sm < 1) per_sm = 1;
    return (unsigned)(per_sm * be->num_sms);
}

#endif
