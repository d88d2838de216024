/* Fused causal attention, forward and backward (kernels/ops.h: attention_fwd, attention_bwd): what
 * the files attention_ref.cu (reference path, dsum), attention_fwd.cu and attention_bwd.cu share.
 *
 * qkv[N, ld], ld = (Hq + 2 Hkv) D, each row grouped by KV group g: [q_{gG} .. q_{gG+G-1}, k_g, v_g]
 * (G = Hq / Hkv); out[N, Hq D]; lse[B, Hq, T] = ln sum_j exp(scale q_i.k_j) over visible keys;
 * seg[N] (optional): key j is visible to query i iff j <= i and seg[j] == seg[i].
 *
 * Two implementations of the same function:
 *  - attention_ref_*: one warp per query row (forward, dQ) or per key row (dK, dV), fp32 math
 *    straight from the definition. It serves head dims without a fast path (any even D <= 256) and
 *    is exported (gt_cuda_attention_ref_fwd/bwd) as a second reference for tests/gpu.
 *  - the fast path for D = 64, 128, 256, flash-attention-2 style: bf16 tensor-core mma.sync
 *    m16n8k16 with fp32 accumulators, tiles in shared memory loaded by cp.async one step ahead
 *    (double buffers), rows padded by 16 bytes so ldmatrix is free of bank conflicts,
 *    online softmax in the exp2 domain, causal tiles skipped, heaviest blocks scheduled first.
 *
 * Backward, without atomics (deterministic: the same inputs give bitwise the same dqkv):
 *   dsum = rowsum(dO * O) per (row, head), parked in dqkv (dsum_at)  attention_dsum_kernel
 *   dK, dV: a block per (64-key tile, batch, KV group, head split) loops over the query tiles at
 *     or after its keys and over the split's query heads of the group; P and dS are recomputed
 *     from the stored lse and passed between warps through shared memory.   attention_dkv_kernel
 *   dQ: a block per (128-query tile, batch, head) recomputes P and dP like the forward and
 *     accumulates dS K in registers.                             attention_dq_kernel
 *   With few KV heads (MQA) the G query heads of a group are split over blocks to fill the chip;
 *   each split then writes fp32 partial dK, dV, summed in a fixed order by attention_dkv_reduce.
 * No allocation per call: dsum lives in dqkv until dq overwrites it, and the partials go in the
 * backend's lent workspace (be->workspace, stream-ordered like the GEMMs that also use it). */
#ifndef GT_ATTENTION_CUH
#define GT_ATTENTION_CUH

#include <math.h>
#include <stdint.h>

#include "attention_cudnn.h"
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define ATTN_LOG2E 1.4426950408889634f
#define ATTN_LN2 0.6931471805599453f

typedef struct {
    int B, T, Hq, Hkv, D, G;
    int ld;           /* elements in one qkv row */
    float scale;      /* applied to q.k */
    float scale_log2; /* scale * log2(e): scores in the exp2 domain */
} attn_shape;

/* Column of query head h / key head g inside a qkv row; the value head follows the key head. */
static __host__ __device__ __forceinline__ int q_col(attn_shape s, int h) {
    return (h + 2 * (h / s.G)) * s.D;
}
static __host__ __device__ __forceinline__ int k_col(attn_shape s, int g) {
    return (g * (s.G + 2) + s.G) * s.D;
}

/* dsum of (b, h, t) is parked in dqkv, in the first 4 bytes of dq's own slot (row b T + t, head h;
 * 4-byte aligned as ld and D are even): the dsum kernel writes it, the dK/dV and dQ kernels read
 * it, and dq overwrites it; a dQ kernel reads a row's dsum before the same warp or block writes
 * that row's dq, with a barrier in between. The index is in floats from (float *)dqkv. */
static __host__ __device__ __forceinline__ size_t dsum_at(attn_shape s, int b, int h, int t) {
    return (((size_t)b * s.T + t) * s.ld + q_col(s, h)) / 2;
}


#define REF_WARPS 4
#define REF_PER_LANE 8

/* ======================================================================================
 * Fast path: PTX building blocks.
 * ====================================================================================== */

static __device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global -> shared; zero-filled (nothing read) when !valid. */
static __device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0)
                 : "memory");
}
static __device__ __forceinline__ void cp_async4(uint32_t dst, const void *src, int valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src),
                 "r"(valid ? 4 : 0)
                 : "memory");
}
static __device__ __forceinline__ void cp_async_commit(void) {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
static __device__ __forceinline__ void cp_async_wait_all(void) {
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

/* Four 8x8 bf16 matrices; lane l gives the row address of matrix l/8, row l%8; register r of a
 * lane holds (row lane/4, cols 2(lane%4), +1) of matrix r (transposed matrix with .trans). */
static __device__ __forceinline__ void ldsm4(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
static __device__ __forceinline__ void ldsm4t(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* c[16x8] += a[16x16] b[16x8]. Fragments (g = lane/4, t = lane%4): a0 (g, 2t..2t+1),
 * a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..); b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g);
 * c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..2t+1). */
static __device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0,
                                                uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two floats as a bf16 pair, the first in the low half (the lower column of a fragment). */
static __device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* Shared-memory tiles are row-major with RB = 2 cols + 16 bytes per row: the 16-byte pad shifts
 * each row by one bank group, so the 8 rows of an ldmatrix matrix (same chunk, consecutive rows)
 * and the fragment stores of a warp hit 32 distinct banks, and every fragment address is a lane's
 * base plus a compile-time offset (no per-block address registers). */
#define TILE_RB(cols) ((cols)*2 + 16)
#define PT_RB TILE_RB(64) /* the 64 x 64 P^T and dS^T tiles of the dK/dV kernel */

/* Byte offset of 16-byte chunk c of row r. */
template <int RB>
static __device__ __forceinline__ uint32_t toff(int r, int c) {
    return (uint32_t)(r * RB + c * 16);
}

/* cp.async of a ROWS x D bf16 tile: rows t0 .. t0+ROWS-1 of a sequence whose row 0 is at g0
 * (row stride ld elements), rows >= T zero-filled, into shared memory at dst (padded rows). */
template <int ROWS, int D>
static __device__ __forceinline__ void load_tile(uint32_t dst, const bf16 *g0, int ld, int t0,
                                                 int T, int tid) {
    constexpr int CH = D / 8, RB = TILE_RB(D);
    static_assert((ROWS * CH) % 256 == 0, "tile chunks must split evenly over 256 threads");
#pragma unroll
    for (int k = 0; k < ROWS * CH / 256; k++) {
        const int idx = tid + 256 * k, r = idx / CH, c = idx % CH;
        const int valid = t0 + r < T;
        cp_async16(dst + toff<RB>(r, c), g0 + (size_t)(valid ? t0 + r : 0) * ld + c * 8, valid);
    }
}

/* Fragment addresses: a lane's part (the row and chunk it addresses in the first 16 x 16 block) is
 * computed once; block (row r0, chunk c0) is at tile + lane part + a constant. Three lane patterns:
 *   A  (16 rows x 16 cols of a row-major tile: Q, dO, P^T):         lane_a
 *   B  where tile rows are the n index (K for S = Q K^T):            lane_brow
 *   B  where tile rows are the k index (V for O = P V; .trans):      lane_bcol */
template <int RB>
static __device__ __forceinline__ uint32_t lane_a(int lane) {
    return toff<RB>(lane & 15, lane >> 4);
}
template <int RB>
static __device__ __forceinline__ uint32_t lane_brow(int lane) {
    return toff<RB>((lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
}
template <int RB>
static __device__ __forceinline__ uint32_t lane_bcol(int lane) {
    return toff<RB>((lane & 7) + ((lane >> 3) & 1) * 8, lane >> 4);
}
template <int RB>
static __device__ __forceinline__ uint32_t blk(uint32_t tile, uint32_t lanepart, int r0, int c0) {
    return tile + lanepart + toff<RB>(r0, c0);
}

/* acc[DB][4] (a warp's 16 rows x DB*8 head dims, fp32) += a . tile: a = the warp's 16 x BC bf16 A
 * fragments (P in the forward, dS in dQ's kernel), tile = BC keys x DB*8 dims in shared memory (V,
 * or K), read transposed by ldmatrix. 16 dims (two n-blocks) per step, the tile's fragments of step
 * j+1 loaded before the MMAs of step j. lc: lane_bcol<RB>(lane). */
template <int RB, int BC, int DB>
static __device__ __forceinline__ void mma_rows_tile(float (&acc)[DB][4], const uint32_t (&a)[BC / 16][4],
                                                     uint32_t tile, uint32_t lc) {
    uint32_t fb[2][BC / 16][4];
#pragma unroll
    for (int kk = 0; kk < BC / 16; kk++) ldsm4t(fb[0][kk], blk<RB>(tile, lc, kk * 16, 0));
#pragma unroll
    for (int j = 0; j < DB / 2; j++) {
        const int cur = j & 1;
        if (j + 1 < DB / 2) {
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) ldsm4t(fb[cur ^ 1][kk], blk<RB>(tile, lc, kk * 16, 2 * j + 2));
        }
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
            mma16816(acc[2 * j], a[kk], fb[cur][kk][0], fb[cur][kk][1]);
            mma16816(acc[2 * j + 1], a[kk], fb[cur][kk][2], fb[cur][kk][3]);
        }
    }
}

#define FA_THREADS 256
#define FA_BR 128 /* query rows of a forward / dQ block: 16 per warp */

/* Whether key `col` is visible to query `row` (row < T holds for every row that is stored). */
static __device__ __forceinline__ bool visible(int row, int col, int T, const int32_t *sg,
                                               int srow) {
    return col <= row && (!sg || (row < T && sg[col] == srow));
}


/* ---- host side ---- */

static inline attn_shape make_shape(float scale, int B, int T, int Hq, int Hkv, int D) {
    GT_ASSERT(B >= 0 && T >= 0 && Hq > 0 && Hkv > 0 && Hq % Hkv == 0,
              "attention: bad shape B=%d T=%d Hq=%d Hkv=%d", B, T, Hq, Hkv);
    GT_ASSERT(D > 0 && D % 2 == 0 && D <= 256, "attention: head_dim %d must be even and <= 256", D);
    attn_shape s;
    s.B = B;
    s.T = T;
    s.Hq = Hq;
    s.Hkv = Hkv;
    s.D = D;
    s.G = Hq / Hkv;
    s.ld = (Hq + 2 * Hkv) * D;
    s.scale = scale;
    s.scale_log2 = scale * ATTN_LOG2E;
    return s;
}

static inline int fast_dim(int D) { return D == 64 || D == 128 || D == 256; }

static inline unsigned ref_blocks(long long rows) {
    return (unsigned)((rows + REF_WARPS - 1) / REF_WARPS);
}

/* Raises the kernel's dynamic shared-memory limit (needed above 48 KiB), if the device allows. */
static inline void set_smem(gt_backend *be, const void *kernel, size_t bytes) {
    int optin = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, be->device));
    GT_ASSERT(bytes <= (size_t)optin, "attention: %zu bytes of shared memory needed, device has %d",
              bytes, optin);
    CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}


/* Kernels of attention_ref.cu launched from the other files. */
__global__ void attention_ref_fwd_kernel(bf16 *out, float *lse, const bf16 *qkv, const int32_t *seg,
                                         attn_shape s);
__global__ void attention_ref_dq_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv,
                                        const float *lse, const float *dsum, const int32_t *seg,
                                        attn_shape s);
__global__ void attention_ref_dkv_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv,
                                         const float *lse, const float *dsum, const int32_t *seg,
                                         attn_shape s);
__global__ void attention_dsum_kernel(float *dsum, const bf16 *dout, const bf16 *out, attn_shape s);

#endif
