/* Fused causal attention, forward and backward (kernels/ops.h: attention_fwd, attention_bwd).
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
#include <math.h>
#include <stdint.h>

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

/* ======================================================================================
 * Reference path: one warp per row, lane l holds elements l, l + 32, ... of a head (D <= 256).
 * ====================================================================================== */

#define REF_WARPS 4
#define REF_PER_LANE 8

/* Loads one head row (D elements) as floats, zero beyond D. */
static __device__ __forceinline__ void ref_load(float r[REF_PER_LANE], const bf16 *p, int D,
                                                int lane) {
#pragma unroll
    for (int c = 0; c < REF_PER_LANE; c++) {
        const int d = lane + 32 * c;
        r[c] = d < D ? __bfloat162float(p[d]) : 0.0f;
    }
}

static __device__ __forceinline__ float ref_dot(const float a[REF_PER_LANE], const bf16 *p, int D,
                                                int lane) {
    float s = 0.0f;
#pragma unroll
    for (int c = 0; c < REF_PER_LANE; c++) {
        const int d = lane + 32 * c;
        if (d < D) s += a[c] * __bfloat162float(p[d]);
    }
    return gt_warp_sum(s);
}

static __device__ __forceinline__ void ref_store(bf16 *p, const float r[REF_PER_LANE], float mul,
                                                 int D, int lane) {
#pragma unroll
    for (int c = 0; c < REF_PER_LANE; c++) {
        const int d = lane + 32 * c;
        if (d < D) p[d] = __float2bfloat16_rn(r[c] * mul);
    }
}

/* Forward, one warp per (b, h, i), online softmax over keys j <= i. */
__global__ void attention_ref_fwd_kernel(bf16 *out, float *lse, const bf16 *qkv, const int32_t *seg,
                                         attn_shape s) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * REF_WARPS + (threadIdx.x >> 5);
    if (row >= s.B * s.Hq * s.T) return;
    const int i = row % s.T, h = row / s.T % s.Hq, b = row / s.T / s.Hq;
    const bf16 *base = qkv + (size_t)b * s.T * s.ld;
    const bf16 *kb = base + k_col(s, h / s.G), *vb = kb + s.D;
    const int32_t *sg = seg ? seg + (size_t)b * s.T : NULL;
    float q[REF_PER_LANE], o[REF_PER_LANE];
    ref_load(q, base + (size_t)i * s.ld + q_col(s, h), s.D, lane);
#pragma unroll
    for (int c = 0; c < REF_PER_LANE; c++) o[c] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j <= i; j++) {
        if (sg && sg[j] != sg[i]) continue;
        const float x = ref_dot(q, kb + (size_t)j * s.ld, s.D, lane) * s.scale;
        const float mn = fmaxf(m, x), corr = expf(m - mn), p = expf(x - mn);
        l = l * corr + p;
        const bf16 *v = vb + (size_t)j * s.ld;
#pragma unroll
        for (int c = 0; c < REF_PER_LANE; c++) {
            const int d = lane + 32 * c;
            o[c] = o[c] * corr + (d < s.D ? p * __bfloat162float(v[d]) : 0.0f);
        }
        m = mn;
    }
    ref_store(out + ((size_t)b * s.T + i) * s.Hq * s.D + (size_t)h * s.D, o, 1.0f / l, s.D, lane);
    if (lane == 0) lse[row] = m + logf(l); /* row = (b Hq + h) T + i */
}

/* dQ, one warp per (b, h, i): dq_i = scale sum_j P_ij (dO_i.v_j - dsum_i) k_j. dsum is
 * (float *)dqkv, indexed by dsum_at. */
__global__ void attention_ref_dq_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv,
                                        const float *lse, const float *dsum, const int32_t *seg,
                                        attn_shape s) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * REF_WARPS + (threadIdx.x >> 5);
    if (row >= s.B * s.Hq * s.T) return;
    const int i = row % s.T, h = row / s.T % s.Hq, b = row / s.T / s.Hq;
    const bf16 *base = qkv + (size_t)b * s.T * s.ld;
    const bf16 *kb = base + k_col(s, h / s.G), *vb = kb + s.D;
    const int32_t *sg = seg ? seg + (size_t)b * s.T : NULL;
    float q[REF_PER_LANE], dO[REF_PER_LANE], dq[REF_PER_LANE];
    ref_load(q, base + (size_t)i * s.ld + q_col(s, h), s.D, lane);
    ref_load(dO, dout + ((size_t)b * s.T + i) * s.Hq * s.D + (size_t)h * s.D, s.D, lane);
#pragma unroll
    for (int c = 0; c < REF_PER_LANE; c++) dq[c] = 0.0f;
    const float li = lse[row], di = dsum[dsum_at(s, b, h, i)];
    __syncwarp(); /* every lane has read dsum before any lane can overwrite it with dq */
    for (int j = 0; j <= i; j++) {
        if (sg && sg[j] != sg[i]) continue;
        const bf16 *k = kb + (size_t)j * s.ld;
        const float p = expf(ref_dot(q, k, s.D, lane) * s.scale - li);
        const float ds = p * (ref_dot(dO, vb + (size_t)j * s.ld, s.D, lane) - di);
#pragma unroll
        for (int c = 0; c < REF_PER_LANE; c++) {
            const int d = lane + 32 * c;
            if (d < s.D) dq[c] += ds * __bfloat162float(k[d]);
        }
    }
    ref_store(dqkv + ((size_t)b * s.T + i) * s.ld + q_col(s, h), dq, s.scale, s.D, lane);
}

/* dK, dV, one warp per (b, g, j), summed over the G query heads of group g and queries i >= j. */
__global__ void attention_ref_dkv_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv,
                                         const float *lse, const float *dsum, const int32_t *seg,
                                         attn_shape s) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * REF_WARPS + (threadIdx.x >> 5);
    if (row >= s.B * s.Hkv * s.T) return;
    const int j = row % s.T, g = row / s.T % s.Hkv, b = row / s.T / s.Hkv;
    const bf16 *base = qkv + (size_t)b * s.T * s.ld;
    const int32_t *sg = seg ? seg + (size_t)b * s.T : NULL;
    float k[REF_PER_LANE], v[REF_PER_LANE], dk[REF_PER_LANE], dv[REF_PER_LANE];
    ref_load(k, base + (size_t)j * s.ld + k_col(s, g), s.D, lane);
    ref_load(v, base + (size_t)j * s.ld + k_col(s, g) + s.D, s.D, lane);
#pragma unroll
    for (int c = 0; c < REF_PER_LANE; c++) dk[c] = dv[c] = 0.0f;
    for (int h = g * s.G; h < (g + 1) * s.G; h++) {
        const float *lh = lse + ((size_t)b * s.Hq + h) * s.T;
        for (int i = j; i < s.T; i++) {
            if (sg && sg[j] != sg[i]) continue;
            const bf16 *q = base + (size_t)i * s.ld + q_col(s, h);
            const bf16 *dO = dout + ((size_t)b * s.T + i) * s.Hq * s.D + (size_t)h * s.D;
            const float p = expf(ref_dot(k, q, s.D, lane) * s.scale - lh[i]);
            const float ds = p * (ref_dot(v, dO, s.D, lane) - dsum[dsum_at(s, b, h, i)]);
#pragma unroll
            for (int c = 0; c < REF_PER_LANE; c++) {
                const int d = lane + 32 * c;
                if (d < s.D) {
                    dv[c] += p * __bfloat162float(dO[d]);
                    dk[c] += ds * __bfloat162float(q[d]);
                }
            }
        }
    }
    bf16 *dst = dqkv + ((size_t)b * s.T + j) * s.ld + k_col(s, g);
    ref_store(dst, dk, s.scale, s.D, lane);
    ref_store(dst + s.D, dv, 1.0f, s.D, lane);
}

/* dsum[dsum_at(b, h, t)] = sum_d dout * out of that head row (both bf16); one warp per row.
 * Shared by both paths. D is even, so bf16 pairs are 4-byte aligned. */
__global__ void attention_dsum_kernel(float *dsum, const bf16 *dout, const bf16 *out,
                                      attn_shape s) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * REF_WARPS + (threadIdx.x >> 5);
    if (row >= s.B * s.Hq * s.T) return;
    const int t = row % s.T, h = row / s.T % s.Hq, b = row / s.T / s.Hq;
    const size_t off = ((size_t)b * s.T + t) * s.Hq * s.D + (size_t)h * s.D;
    const __nv_bfloat162 *a = (const __nv_bfloat162 *)(dout + off);
    const __nv_bfloat162 *o = (const __nv_bfloat162 *)(out + off);
    float acc = 0.0f;
    for (int k = lane; k < s.D / 2; k += 32) {
        const float2 x = __bfloat1622float2(a[k]), y = __bfloat1622float2(o[k]);
        acc += x.x * y.x + x.y * y.y;
    }
    acc = gt_warp_sum(acc);
    if (lane == 0) dsum[dsum_at(s, b, h, t)] = acc;
}

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

#define FA_THREADS 256
#define FA_BR 128 /* query rows of a forward / dQ block: 16 per warp */

/* Whether key `col` is visible to query `row` (row < T holds for every row that is stored). */
static __device__ __forceinline__ bool visible(int row, int col, int T, const int32_t *sg,
                                               int srow) {
    return col <= row && (!sg || (row < T && sg[col] == srow));
}

/* ======================================================================================
 * Forward: a block per (128-query tile, b, h), 8 warps of 16 query rows; K/V tiles of BC keys.
 * Shared memory: Q [128][D], K [2][BC][D], V [2][BC][D] (bf16, rows padded, TILE_RB).
 * ====================================================================================== */
template <int D, int BC>
__global__ void __launch_bounds__(FA_THREADS, 1)
    attention_fwd_kernel(bf16 *out, float *lse, const bf16 *qkv, const int32_t *seg, attn_shape s,
                         int n_mtiles) {
    constexpr int CH = D / 8, RB = TILE_RB(D), KS = D / 16, NB = BC / 8, DB = D / 8, KT = BC * RB;
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t sQ = smem_u32(smem), sK = sQ + FA_BR * RB, sV = sK + 2 * KT;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const uint32_t la = lane_a<RB>(lane), lb = lane_brow<RB>(lane), lc = lane_bcol<RB>(lane);
    /* Heaviest query tiles (most keys) first, all heads of one tile together. */
    const int BH = s.B * s.Hq, bh = blockIdx.x % BH, mt = n_mtiles - 1 - blockIdx.x / BH;
    const int b = bh / s.Hq, h = bh % s.Hq, m0 = mt * FA_BR, T = s.T;
    const bf16 *base = qkv + (size_t)b * T * s.ld;
    const bf16 *kg = base + k_col(s, h / s.G), *vg = kg + D;
    const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
    const int n_kv = (min(m0 + FA_BR, T) + BC - 1) / BC;

    load_tile<FA_BR, D>(sQ, base + q_col(s, h), s.ld, m0, T, tid);
    load_tile<BC, D>(sK, kg, s.ld, 0, T, tid);
    load_tile<BC, D>(sV, vg, s.ld, 0, T, tid);
    cp_async_commit();

    const int wrow = m0 + warp * 16; /* first row of this warp */
    const int r0 = wrow + (lane >> 2), r1 = r0 + 8;
    const int seg0 = sg && r0 < T ? sg[r0] : 0, seg1 = sg && r1 < T ? sg[r1] : 0;
    float o[DB][4], mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < DB; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;

    for (int n = 0; n < n_kv; n++) {
        const int n0 = n * BC, buf = n & 1;
        cp_async_wait_all();
        __syncthreads(); /* tile n landed for all; everyone is done with the other buffer */
        if (n + 1 < n_kv) {
            load_tile<BC, D>(sK + (buf ^ 1) * KT, kg, s.ld, n0 + BC, T, tid);
            load_tile<BC, D>(sV + (buf ^ 1) * KT, vg, s.ld, n0 + BC, T, tid);
            cp_async_commit();
        }
        if (n0 > wrow + 15) continue; /* every key of the tile is after every row of the warp */
        const uint32_t tK = sK + buf * KT, tV = sV + buf * KT;

        float sc[NB][4];
#pragma unroll
        for (int j = 0; j < NB; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
        /* S = Q K^T over k-steps of 16 head dims; the fragments of step ks+1 are loaded before the
         * MMAs of step ks, so ldmatrix latency hides behind tensor work (2 warps per scheduler). */
        uint32_t fa[2][4], fb[2][NB / 2][4];
        ldsm4(fa[0], blk<RB>(sQ, la, warp * 16, 0));
#pragma unroll
        for (int j = 0; j < NB / 2; j++) ldsm4(fb[0][j], blk<RB>(tK, lb, j * 16, 0));
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            const int cur = ks & 1;
            if (ks + 1 < KS) {
                ldsm4(fa[cur ^ 1], blk<RB>(sQ, la, warp * 16, 2 * ks + 2));
#pragma unroll
                for (int j = 0; j < NB / 2; j++)
                    ldsm4(fb[cur ^ 1][j], blk<RB>(tK, lb, j * 16, 2 * ks + 2));
            }
#pragma unroll
            for (int j = 0; j < NB / 2; j++) {
                mma16816(sc[2 * j], fa[cur], fb[cur][j][0], fb[cur][j][1]);
                mma16816(sc[2 * j + 1], fa[cur], fb[cur][j][2], fb[cur][j][3]);
            }
        }
        if (n0 + BC - 1 > wrow || sg) {
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = n0 + j * 8 + 2 * (lane & 3) + (e & 1);
                    if (!visible(e < 2 ? r0 : r1, col, T, sg, e < 2 ? seg0 : seg1))
                        sc[j][e] = -INFINITY;
                }
        }
        /* Online softmax; each row is spread over the 4 lanes of a quad. */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < NB; j++) {
            mx[0] = fmaxf(mx[0], fmaxf(sc[j][0], sc[j][1]));
            mx[1] = fmaxf(mx[1], fmaxf(sc[j][2], sc[j][3]));
        }
        float base2[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            const float mn = fmaxf(mrow[r], mx[r] * s.scale_log2);
            base2[r] = mn == -INFINITY ? 0.0f : mn; /* a row with nothing visible yet */
            const float corr = exp2f(mrow[r] - base2[r]);
            mrow[r] = mn;
            lrow[r] *= corr;
#pragma unroll
            for (int j = 0; j < DB; j++) {
                o[j][2 * r] *= corr;
                o[j][2 * r + 1] *= corr;
            }
        }
        uint32_t pa[BC / 16][4];
#pragma unroll
        for (int j = 0; j < NB; j++) {
            float p[4];
#pragma unroll
            for (int e = 0; e < 4; e++) p[e] = exp2f(fmaf(sc[j][e], s.scale_log2, -base2[e >> 1]));
            lrow[0] += p[0] + p[1];
            lrow[1] += p[2] + p[3];
            pa[j >> 1][(j & 1) * 2] = pack_bf16(p[0], p[1]);
            pa[j >> 1][(j & 1) * 2 + 1] = pack_bf16(p[2], p[3]);
        }
        /* O += P V: k = the tile's keys, n = head dims, 16 dims (two n-blocks) per step, the V
         * fragments of step j+1 loaded before the MMAs of step j. */
        uint32_t fv[2][BC / 16][4];
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) ldsm4t(fv[0][kk], blk<RB>(tV, lc, kk * 16, 0));
#pragma unroll
        for (int j = 0; j < DB / 2; j++) {
            const int cur = j & 1;
            if (j + 1 < DB / 2) {
#pragma unroll
                for (int kk = 0; kk < BC / 16; kk++)
                    ldsm4t(fv[cur ^ 1][kk], blk<RB>(tV, lc, kk * 16, 2 * j + 2));
            }
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) {
                mma16816(o[2 * j], pa[kk], fv[cur][kk][0], fv[cur][kk][1]);
                mma16816(o[2 * j + 1], pa[kk], fv[cur][kk][2], fv[cur][kk][3]);
            }
        }
    }

    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
        inv[r] = lrow[r] > 0.0f ? 1.0f / lrow[r] : 0.0f;
        const int row = r ? r1 : r0;
        if ((lane & 3) == 0 && row < T)
            lse[((size_t)b * s.Hq + h) * T + row] = mrow[r] * ATTN_LN2 + logf(lrow[r]);
    }
    /* Stage O (bf16) in this warp's own Q rows, which no other warp reads, then store 16 bytes
     * per lane along the rows. The first __syncwarp orders the warp's last ldmatrix reads of
     * those rows before any lane's write. */
    const int gr = warp * 16 + (lane >> 2);
    __syncwarp();
#pragma unroll
    for (int j = 0; j < DB; j++) {
        *(uint32_t *)(smem + toff<RB>(gr, j) + (lane & 3) * 4) =
            pack_bf16(o[j][0] * inv[0], o[j][1] * inv[0]);
        *(uint32_t *)(smem + toff<RB>(gr + 8, j) + (lane & 3) * 4) =
            pack_bf16(o[j][2] * inv[1], o[j][3] * inv[1]);
    }
    __syncwarp();
    bf16 *og = out + (size_t)b * T * s.Hq * D + (size_t)h * D;
#pragma unroll
    for (int k = 0; k < 16 * CH / 32; k++) {
        const int idx = lane + 32 * k, r = idx / CH, c = idx % CH, t = wrow + r;
        if (t < T)
            *(uint4 *)(og + (size_t)t * s.Hq * D + c * 8) =
                *(const uint4 *)(smem + toff<RB>(warp * 16 + r, c));
    }
}

/* ======================================================================================
 * Backward, dQ: a block per (128-query tile, b, h), 8 warps of 16 query rows, like the forward:
 *   S = Q K^T, dP = dO V^T, P = exp2(S scale log2e - lse log2e), dS = P (dP - dsum), dQ += dS K.
 * Shared memory: Q [128][D], dO [128][D], K [2][BC][D], V [2][BC][D].
 * ====================================================================================== */
template <int D, int BC>
__global__ void __launch_bounds__(FA_THREADS, 1)
    attention_dq_kernel(bf16 *dqkv, const bf16 *dout, const bf16 *qkv, const float *lse,
                        const float *dsum, const int32_t *seg, attn_shape s, int n_mtiles) {
    constexpr int CH = D / 8, RB = TILE_RB(D), KS = D / 16, NB = BC / 8, DB = D / 8, KT = BC * RB;
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t sQ = smem_u32(smem), sO = sQ + FA_BR * RB, sK = sO + FA_BR * RB,
                   sV = sK + 2 * KT;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const uint32_t la = lane_a<RB>(lane), lb = lane_brow<RB>(lane), lc = lane_bcol<RB>(lane);
    const int BH = s.B * s.Hq, bh = blockIdx.x % BH, mt = n_mtiles - 1 - blockIdx.x / BH;
    const int b = bh / s.Hq, h = bh % s.Hq, m0 = mt * FA_BR, T = s.T;
    const bf16 *base = qkv + (size_t)b * T * s.ld;
    const bf16 *kg = base + k_col(s, h / s.G), *vg = kg + D;
    const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
    const int n_kv = (min(m0 + FA_BR, T) + BC - 1) / BC;

    load_tile<FA_BR, D>(sQ, base + q_col(s, h), s.ld, m0, T, tid);
    load_tile<FA_BR, D>(sO, dout + (size_t)b * T * s.Hq * D + (size_t)h * D, s.Hq * D, m0, T, tid);
    load_tile<BC, D>(sK, kg, s.ld, 0, T, tid);
    load_tile<BC, D>(sV, vg, s.ld, 0, T, tid);
    cp_async_commit();

    const int wrow = m0 + warp * 16;
    const int r0 = wrow + (lane >> 2), r1 = r0 + 8;
    const int seg0 = sg && r0 < T ? sg[r0] : 0, seg1 = sg && r1 < T ? sg[r1] : 0;
    const size_t st = ((size_t)b * s.Hq + h) * T;
    /* Rows past T: lse 0 and dsum 0 keep their (never stored) values finite. */
    const float l2[2] = {r0 < T ? lse[st + r0] * ATTN_LOG2E : 0.0f,
                         r1 < T ? lse[st + r1] * ATTN_LOG2E : 0.0f};
    const float di[2] = {r0 < T ? dsum[dsum_at(s, b, h, r0)] : 0.0f,
                         r1 < T ? dsum[dsum_at(s, b, h, r1)] : 0.0f};
    float dq[DB][4];
#pragma unroll
    for (int j = 0; j < DB; j++) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;

    for (int n = 0; n < n_kv; n++) {
        const int n0 = n * BC, buf = n & 1;
        cp_async_wait_all();
        __syncthreads();
        if (n + 1 < n_kv) {
            load_tile<BC, D>(sK + (buf ^ 1) * KT, kg, s.ld, n0 + BC, T, tid);
            load_tile<BC, D>(sV + (buf ^ 1) * KT, vg, s.ld, n0 + BC, T, tid);
            cp_async_commit();
        }
        if (n0 > wrow + 15) continue;
        const uint32_t tK = sK + buf * KT, tV = sV + buf * KT;

        float sc[NB][4], dp[NB][4];
#pragma unroll
        for (int j = 0; j < NB; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) sc[j][e] = dp[j][e] = 0.0f;
        /* S = Q K^T and dP = dO V^T, fragments of k-step ks+1 loaded before the MMAs of ks. */
        uint32_t fq[2][4], fo[2][4], fk[2][NB / 2][4], fv[2][NB / 2][4];
        ldsm4(fq[0], blk<RB>(sQ, la, warp * 16, 0));
        ldsm4(fo[0], blk<RB>(sO, la, warp * 16, 0));
#pragma unroll
        for (int j = 0; j < NB / 2; j++) {
            ldsm4(fk[0][j], blk<RB>(tK, lb, j * 16, 0));
            ldsm4(fv[0][j], blk<RB>(tV, lb, j * 16, 0));
        }
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            const int cur = ks & 1;
            if (ks + 1 < KS) {
                ldsm4(fq[cur ^ 1], blk<RB>(sQ, la, warp * 16, 2 * ks + 2));
                ldsm4(fo[cur ^ 1], blk<RB>(sO, la, warp * 16, 2 * ks + 2));
#pragma unroll
                for (int j = 0; j < NB / 2; j++) {
                    ldsm4(fk[cur ^ 1][j], blk<RB>(tK, lb, j * 16, 2 * ks + 2));
                    ldsm4(fv[cur ^ 1][j], blk<RB>(tV, lb, j * 16, 2 * ks + 2));
                }
            }
#pragma unroll
            for (int j = 0; j < NB / 2; j++) {
                mma16816(sc[2 * j], fq[cur], fk[cur][j][0], fk[cur][j][1]);
                mma16816(sc[2 * j + 1], fq[cur], fk[cur][j][2], fk[cur][j][3]);
                mma16816(dp[2 * j], fo[cur], fv[cur][j][0], fv[cur][j][1]);
                mma16816(dp[2 * j + 1], fo[cur], fv[cur][j][2], fv[cur][j][3]);
            }
        }
        const bool masked = n0 + BC - 1 > wrow || sg;
        uint32_t da[BC / 16][4];
#pragma unroll
        for (int j = 0; j < NB; j++) {
            float ds[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n0 + j * 8 + 2 * (lane & 3) + (e & 1);
                float p = exp2f(fmaf(sc[j][e], s.scale_log2, -l2[e >> 1]));
                if (masked && !visible(e < 2 ? r0 : r1, col, T, sg, e < 2 ? seg0 : seg1)) p = 0.0f;
                ds[e] = p * (dp[j][e] - di[e >> 1]);
            }
            da[j >> 1][(j & 1) * 2] = pack_bf16(ds[0], ds[1]);
            da[j >> 1][(j & 1) * 2 + 1] = pack_bf16(ds[2], ds[3]);
        }
        /* dQ += dS K: k = the tile's keys, n = head dims; K fragments of step j+1 loaded before
         * the MMAs of step j. */
        uint32_t fb[2][BC / 16][4];
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) ldsm4t(fb[0][kk], blk<RB>(tK, lc, kk * 16, 0));
#pragma unroll
        for (int j = 0; j < DB / 2; j++) {
            const int cur = j & 1;
            if (j + 1 < DB / 2) {
#pragma unroll
                for (int kk = 0; kk < BC / 16; kk++)
                    ldsm4t(fb[cur ^ 1][kk], blk<RB>(tK, lc, kk * 16, 2 * j + 2));
            }
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) {
                mma16816(dq[2 * j], da[kk], fb[cur][kk][0], fb[cur][kk][1]);
                mma16816(dq[2 * j + 1], da[kk], fb[cur][kk][2], fb[cur][kk][3]);
            }
        }
    }

    /* Stage dQ like the forward stages O: in this warp's own Q rows, after its last reads. */
    const int gr = warp * 16 + (lane >> 2);
    __syncwarp();
#pragma unroll
    for (int j = 0; j < DB; j++) {
        *(uint32_t *)(smem + toff<RB>(gr, j) + (lane & 3) * 4) =
            pack_bf16(dq[j][0] * s.scale, dq[j][1] * s.scale);
        *(uint32_t *)(smem + toff<RB>(gr + 8, j) + (lane & 3) * 4) =
            pack_bf16(dq[j][2] * s.scale, dq[j][3] * s.scale);
    }
    __syncwarp();
    bf16 *qg = dqkv + (size_t)b * T * s.ld + q_col(s, h);
#pragma unroll
    for (int k = 0; k < 16 * CH / 32; k++) {
        const int idx = lane + 32 * k, r = idx / CH, c = idx % CH, t = wrow + r;
        if (t < T)
            *(uint4 *)(qg + (size_t)t * s.ld + c * 8) =
                *(const uint4 *)(smem + toff<RB>(warp * 16 + r, c));
    }
}

/* ======================================================================================
 * Backward, dK and dV: a block per (64-key tile, b, KV group g, head split), looping over
 * (query head of the split, 64-query tile at or after the keys). Warp w: key rows 16 (w % 4) ..;
 * in phase 1 query columns 32 (w / 4) .. of S^T = K Q^T and dP^T = V dO^T, in phase 2 head dims
 * (D/2) (w / 4) .. of dV += P^T dO and dK += dS^T Q.
 * Shared memory: K, V [64][D]; Q, dO [2][64][D]; P^T, dS^T [64][64] bf16; lse, dsum [2][64] fp32.
 * ====================================================================================== */
#define KV_TILE 64

/* cp.async of one dK/dV step into buffer buf: the 64-row Q and dO tiles from query row q0 (q0g,
 * o0g: row 0 of the sequence, head column), and lse, dsum of those rows (l0, d0: row 0; dsum rows
 * ldd floats apart). */
template <int D>
static __device__ __forceinline__ void
dkv_prefetch(unsigned char *smem, int buf, const bf16 *q0g, const bf16 *o0g, const float *l0,
             const float *d0, int ldq, int ldo, int ldd, int q0, int T, int tid) {
    constexpr int TB = KV_TILE * TILE_RB(D), PB = KV_TILE * PT_RB;
    const uint32_t sQ = smem_u32(smem) + 2 * TB, sO = sQ + 2 * TB;
    float *sL = (float *)(smem + 6 * TB + 2 * PB), *sD = sL + 2 * KV_TILE;
    load_tile<KV_TILE, D>(sQ + buf * TB, q0g, ldq, q0, T, tid);
    load_tile<KV_TILE, D>(sO + buf * TB, o0g, ldo, q0, T, tid);
    if (tid < 2 * KV_TILE) {
        const int r = tid & (KV_TILE - 1), ok = q0 + r < T;
        const int row = ok ? q0 + r : 0;
        const float *src = tid < KV_TILE ? l0 + row : d0 + (size_t)row * ldd;
        cp_async4(smem_u32((tid < KV_TILE ? sL : sD) + buf * KV_TILE + r), src, ok);
    }
    cp_async_commit();
}

template <int D>
__global__ void __launch_bounds__(FA_THREADS, 1)
    attention_dkv_kernel(bf16 *dqkv, float *part, const bf16 *dout, const bf16 *qkv,
                         const float *lse, const float *dsum, const int32_t *seg, attn_shape s,
                         int hsplit, int hchunk) {
    constexpr int CH = D / 8, RB = TILE_RB(D), KS = D / 16, HB = D / 16, TB = KV_TILE * RB,
                  PB = KV_TILE * PT_RB;
    extern __shared__ __align__(128) unsigned char smem[];
    const uint32_t sK = smem_u32(smem), sV = sK + TB, sQ = sV + TB, sO = sQ + 2 * TB,
                   sP = sO + 2 * TB, sS = sP + PB;
    float *sL = (float *)(smem + 6 * TB + 2 * PB), *sD = sL + 2 * KV_TILE; /* [2][64] each */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const uint32_t la = lane_a<RB>(lane), lb = lane_brow<RB>(lane), lc = lane_bcol<RB>(lane),
                   la8 = lane_a<PT_RB>(lane);
    /* Key tile 0 has the most query tiles: ascending tiles are heaviest first. */
    const int per = s.B * s.Hkv * hsplit, nt = blockIdx.x / per, rem = blockIdx.x % per;
    const int split = rem % hsplit, b = rem / hsplit / s.Hkv, g = rem / hsplit % s.Hkv;
    const int T = s.T, n0 = nt * KV_TILE;
    const int h0 = g * s.G + split * hchunk, nh = min(hchunk, s.G - split * hchunk);
    const int qtiles = (T + KV_TILE - 1) / KV_TILE - nt, n_it = nh * qtiles;
    const bf16 *base = qkv + (size_t)b * T * s.ld;
    const bf16 *dbase = dout + (size_t)b * T * s.Hq * D;
    const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
    const size_t lbase = (size_t)b * s.Hq * T;

    load_tile<KV_TILE, D>(sK, base + k_col(s, g), s.ld, n0, T, tid);
    load_tile<KV_TILE, D>(sV, base + k_col(s, g) + D, s.ld, n0, T, tid);
    dkv_prefetch<D>(smem, 0, base + q_col(s, h0), dbase + (size_t)h0 * D,
                    lse + lbase + (size_t)h0 * T, dsum + dsum_at(s, b, h0, 0), s.ld, s.Hq * D,
                    s.ld / 2, nt * KV_TILE, T, tid);

    const int kg = warp & 3, half = warp >> 2;
    const int k0 = n0 + kg * 16 + (lane >> 2), k1 = k0 + 8; /* this thread's keys */
    float dk[HB][4], dv[HB][4];
#pragma unroll
    for (int j = 0; j < HB; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[j][e] = dv[j][e] = 0.0f;

    for (int it = 0; it < n_it; it++) {
        const int buf = it & 1, q0 = (nt + it % qtiles) * KV_TILE;
        cp_async_wait_all();
        __syncthreads(); /* step it landed; phase 2 of step it-1 is over everywhere */
        if (it + 1 < n_it) {
            /* step it+1: head h0 + (it+1) / qtiles, query tile nt + (it+1) % qtiles */
            const int h = h0 + (it + 1) / qtiles, qn = (nt + (it + 1) % qtiles) * KV_TILE;
            dkv_prefetch<D>(smem, buf ^ 1, base + q_col(s, h), dbase + (size_t)h * D,
                            lse + lbase + (size_t)h * T, dsum + dsum_at(s, b, h, 0), s.ld, s.Hq * D,
                            s.ld / 2, qn, T, tid);
        }
        const uint32_t tQ = sQ + buf * TB, tO = sO + buf * TB;

        /* Phase 1: S^T and dP^T for keys kg*16.. x queries half*32.. */
        float st[4][4], dpt[4][4];
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) st[j][e] = dpt[j][e] = 0.0f;
        /* Steps i = (k-step ks, query block j of 16): the fragments of step i+1 are loaded before
         * the MMAs of step i (K, V fragments once per ks, double-buffered by ks parity). */
        {
            uint32_t fk[2][4], fv[2][4], fq[2][4], fo[2][4];
            ldsm4(fk[0], blk<RB>(sK, la, kg * 16, 0));
            ldsm4(fv[0], blk<RB>(sV, la, kg * 16, 0));
            ldsm4(fq[0], blk<RB>(tQ, lb, half * 32, 0));
            ldsm4(fo[0], blk<RB>(tO, lb, half * 32, 0));
#pragma unroll
            for (int i = 0; i < 2 * KS; i++) {
                const int ks = i >> 1, j = i & 1, cur = i & 1;
                if (i + 1 < 2 * KS) {
                    const int kn = (i + 1) >> 1, jn = (i + 1) & 1;
                    if (jn == 0) {
                        ldsm4(fk[kn & 1], blk<RB>(sK, la, kg * 16, 2 * kn));
                        ldsm4(fv[kn & 1], blk<RB>(sV, la, kg * 16, 2 * kn));
                    }
                    ldsm4(fq[cur ^ 1], blk<RB>(tQ, lb, half * 32 + jn * 16, 2 * kn));
                    ldsm4(fo[cur ^ 1], blk<RB>(tO, lb, half * 32 + jn * 16, 2 * kn));
                }
                mma16816(st[2 * j], fk[ks & 1], fq[cur][0], fq[cur][1]);
                mma16816(st[2 * j + 1], fk[ks & 1], fq[cur][2], fq[cur][3]);
                mma16816(dpt[2 * j], fv[ks & 1], fo[cur][0], fo[cur][1]);
                mma16816(dpt[2 * j + 1], fv[ks & 1], fo[cur][2], fo[cur][3]);
            }
        }
        const float *L = sL + buf * KV_TILE, *Ds = sD + buf * KV_TILE;
        const bool masked = q0 == n0 || q0 + KV_TILE > T || sg;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            float p[4], ds[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int qc = half * 32 + j * 8 + 2 * (lane & 3) + (e & 1), q = q0 + qc;
                const int key = e < 2 ? k0 : k1;
                p[e] = exp2f(fmaf(st[j][e], s.scale_log2, -L[qc] * ATTN_LOG2E));
                if (masked && !(key <= q && q < T && (!sg || sg[key] == sg[q]))) p[e] = 0.0f;
                ds[e] = p[e] * (dpt[j][e] - Ds[qc]);
            }
            const int chunk = half * 4 + j, r = kg * 16 + (lane >> 2);
            *(uint32_t *)(smem + 6 * TB + toff<PT_RB>(r, chunk) + (lane & 3) * 4) =
                pack_bf16(p[0], p[1]);
            *(uint32_t *)(smem + 6 * TB + toff<PT_RB>(r + 8, chunk) + (lane & 3) * 4) =
                pack_bf16(p[2], p[3]);
            *(uint32_t *)(smem + 6 * TB + PB + toff<PT_RB>(r, chunk) + (lane & 3) * 4) =
                pack_bf16(ds[0], ds[1]);
            *(uint32_t *)(smem + 6 * TB + PB + toff<PT_RB>(r + 8, chunk) + (lane & 3) * 4) =
                pack_bf16(ds[2], ds[3]);
        }
        __syncthreads();

        /* Phase 2: k = the 64 queries, n = head dims half*D/2 .. */
        /* Steps i = (query k-step kk, head-dim pair j), pipelined like phase 1 (P^T and dS^T
         * fragments once per kk). */
        {
            constexpr int NJ = HB / 2, NI = (KV_TILE / 16) * NJ;
            const int C0 = half * (CH / 2);
            uint32_t fp[2][4], fs[2][4], fo[2][4], fq[2][4];
            ldsm4(fp[0], blk<PT_RB>(sP, la8, kg * 16, 0));
            ldsm4(fs[0], blk<PT_RB>(sS, la8, kg * 16, 0));
            ldsm4t(fo[0], blk<RB>(tO, lc, 0, C0));
            ldsm4t(fq[0], blk<RB>(tQ, lc, 0, C0));
#pragma unroll
            for (int i = 0; i < NI; i++) {
                const int kk = i / NJ, j = i % NJ, cur = i & 1;
                if (i + 1 < NI) {
                    const int kn = (i + 1) / NJ, jn = (i + 1) % NJ;
                    if (jn == 0) {
                        ldsm4(fp[kn & 1], blk<PT_RB>(sP, la8, kg * 16, 2 * kn));
                        ldsm4(fs[kn & 1], blk<PT_RB>(sS, la8, kg * 16, 2 * kn));
                    }
                    ldsm4t(fo[cur ^ 1], blk<RB>(tO, lc, kn * 16, C0 + 2 * jn));
                    ldsm4t(fq[cur ^ 1], blk<RB>(tQ, lc, kn * 16, C0 + 2 * jn));
                }
                mma16816(dv[2 * j], fp[kk & 1], fo[cur][0], fo[cur][1]);
                mma16816(dv[2 * j + 1], fp[kk & 1], fo[cur][2], fo[cur][3]);
                mma16816(dk[2 * j], fs[kk & 1], fq[cur][0], fq[cur][1]);
                mma16816(dk[2 * j + 1], fs[kk & 1], fq[cur][2], fq[cur][3]);
            }
        }
    }

    const int kr = kg * 16 + (lane >> 2);
    if (hsplit > 1) {
        /* fp32 partial of this split: part[split][b T + key][g][dk | dv][D]. */
        const size_t rs = (size_t)s.Hkv * 2 * D;
        float *pp = part + ((size_t)split * s.B * T + (size_t)b * T) * rs + (size_t)g * 2 * D;
#pragma unroll
        for (int j = 0; j < HB; j++) {
            const int col = half * (D / 2) + j * 8 + 2 * (lane & 3);
            if (k0 < T) {
                *(float2 *)(pp + (size_t)k0 * rs + col) =
                    make_float2(dk[j][0] * s.scale, dk[j][1] * s.scale);
                *(float2 *)(pp + (size_t)k0 * rs + D + col) = make_float2(dv[j][0], dv[j][1]);
            }
            if (k1 < T) {
                *(float2 *)(pp + (size_t)k1 * rs + col) =
                    make_float2(dk[j][2] * s.scale, dk[j][3] * s.scale);
                *(float2 *)(pp + (size_t)k1 * rs + D + col) = make_float2(dv[j][2], dv[j][3]);
            }
        }
        return;
    }
    /* Stage dK, dV (bf16) over the K, V tiles: their last reads were in phase 1 of the last step,
     * before the barrier every warp has passed. */
#pragma unroll
    for (int j = 0; j < HB; j++) {
        const int chunk = half * (CH / 2) + j;
        *(uint32_t *)(smem + toff<RB>(kr, chunk) + (lane & 3) * 4) =
            pack_bf16(dk[j][0] * s.scale, dk[j][1] * s.scale);
        *(uint32_t *)(smem + toff<RB>(kr + 8, chunk) + (lane & 3) * 4) =
            pack_bf16(dk[j][2] * s.scale, dk[j][3] * s.scale);
        *(uint32_t *)(smem + TB + toff<RB>(kr, chunk) + (lane & 3) * 4) =
            pack_bf16(dv[j][0], dv[j][1]);
        *(uint32_t *)(smem + TB + toff<RB>(kr + 8, chunk) + (lane & 3) * 4) =
            pack_bf16(dv[j][2], dv[j][3]);
    }
    __syncthreads();
    bf16 *kdst = dqkv + (size_t)b * T * s.ld + k_col(s, g);
#pragma unroll
    for (int k = 0; k < KV_TILE * CH / FA_THREADS; k++) {
        const int idx = tid + FA_THREADS * k, r = idx / CH, c = idx % CH;
        if (n0 + r < T) {
            bf16 *row = kdst + (size_t)(n0 + r) * s.ld + c * 8;
            *(uint4 *)row = *(const uint4 *)(smem + toff<RB>(r, c));
            *(uint4 *)(row + D) = *(const uint4 *)(smem + TB + toff<RB>(r, c));
        }
    }
}

/* dK, dV = sum over the hsplit partials (fixed order), rounded to bf16 into the fused layout. */
__global__ void attention_dkv_reduce_kernel(bf16 *dqkv, const float *part, attn_shape s,
                                            int hsplit) {
    const size_t rs = (size_t)s.Hkv * 2 * s.D, per = (size_t)s.B * s.T * rs, n4 = per / 4;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t e = i * 4, n = e / rs, w = e % rs;
        float4 a = *(const float4 *)(part + e);
        for (int k = 1; k < hsplit; k++) {
            const float4 x = *(const float4 *)(part + (size_t)k * per + e);
            a.x += x.x;
            a.y += x.y;
            a.z += x.z;
            a.w += x.w;
        }
        const int g = (int)(w / (2 * s.D)), c = (int)(w % (2 * s.D));
        uint2 v;
        v.x = pack_bf16(a.x, a.y);
        v.y = pack_bf16(a.z, a.w);
        *(uint2 *)(dqkv + n * s.ld + k_col(s, g) + c) = v;
    }
}

/* ======================================================================================
 * Host side.
 * ====================================================================================== */

static attn_shape make_shape(float scale, int B, int T, int Hq, int Hkv, int D) {
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

static int fast_dim(int D) { return D == 64 || D == 128 || D == 256; }

static unsigned ref_blocks(long long rows) {
    return (unsigned)((rows + REF_WARPS - 1) / REF_WARPS);
}

/* Raises the kernel's dynamic shared-memory limit (needed above 48 KiB), if the device allows. */
static void set_smem(gt_backend *be, const void *kernel, size_t bytes) {
    int optin = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, be->device));
    GT_ASSERT(bytes <= (size_t)optin, "attention: %zu bytes of shared memory needed, device has %d",
              bytes, optin);
    CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <int D, int BC>
static void launch_fwd(gt_backend *be, bf16 *out, float *lse, const bf16 *qkv, const int32_t *seg,
                       attn_shape s) {
    const size_t smem = (size_t)(FA_BR + 4 * BC) * TILE_RB(D);
    set_smem(be, (const void *)attention_fwd_kernel<D, BC>, smem);
    const int n_m = (s.T + FA_BR - 1) / FA_BR;
    attention_fwd_kernel<D, BC>
        <<<n_m * s.B * s.Hq, FA_THREADS, smem, be->stream>>>(out, lse, qkv, seg, s, n_m);
    CUDA_CHECK_LAUNCH();
}

template <int D, int BC>
static void launch_dq(gt_backend *be, bf16 *dqkv, const bf16 *dout, const bf16 *qkv,
                      const float *lse, const float *dsum, const int32_t *seg, attn_shape s) {
    const size_t smem = (size_t)(2 * FA_BR + 4 * BC) * TILE_RB(D);
    set_smem(be, (const void *)attention_dq_kernel<D, BC>, smem);
    const int n_m = (s.T + FA_BR - 1) / FA_BR;
    attention_dq_kernel<D, BC><<<n_m * s.B * s.Hq, FA_THREADS, smem, be->stream>>>(
        dqkv, dout, qkv, lse, dsum, seg, s, n_m);
    CUDA_CHECK_LAUNCH();
}

template <int D>
static void launch_dkv(gt_backend *be, bf16 *dqkv, float *part, const bf16 *dout, const bf16 *qkv,
                       const float *lse, const float *dsum, const int32_t *seg, attn_shape s,
                       int hsplit, int hchunk) {
    const size_t smem = (size_t)6 * KV_TILE * TILE_RB(D) + 2 * KV_TILE * PT_RB + 4 * KV_TILE * 4;
    set_smem(be, (const void *)attention_dkv_kernel<D>, smem);
    const int n_t = (s.T + KV_TILE - 1) / KV_TILE;
    attention_dkv_kernel<D><<<n_t * s.B * s.Hkv * hsplit, FA_THREADS, smem, be->stream>>>(
        dqkv, part, dout, qkv, lse, dsum, seg, s, hsplit, hchunk);
    CUDA_CHECK_LAUNCH();
}

static void ref_fwd(gt_backend *be, void *out, void *lse, const void *qkv, const int32_t *seg,
                    attn_shape s) {
    attention_ref_fwd_kernel<<<ref_blocks((long long)s.B * s.Hq * s.T), REF_WARPS * 32, 0,
                               be->stream>>>((bf16 *)out, (float *)lse, (const bf16 *)qkv, seg, s);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_attention_ref_fwd(gt_backend *be, void *out, void *lse, const void *qkv,
                                          const int32_t *seg, float scale, int B, int T, int Hq,
                                          int Hkv, int D) {
    const attn_shape s = make_shape(scale, B, T, Hq, Hkv, D);
    if (B * T == 0) return;
    GT_NVTX_PUSH("attention_ref_fwd");
    ref_fwd(be, out, lse, qkv, seg, s);
    GT_NVTX_POP();
}

extern "C" void gt_cuda_attention_fwd(gt_backend *be, void *out, void *lse, const void *qkv,
                                      const int32_t *seg, float scale, int B, int T, int Hq,
                                      int Hkv, int D) {
    const attn_shape s = make_shape(scale, B, T, Hq, Hkv, D);
    if (B * T == 0) return;
    GT_NVTX_PUSH("attention_fwd");
    bf16 *o = (bf16 *)out;
    float *l = (float *)lse;
    const bf16 *x = (const bf16 *)qkv;
    if (D == 256)
        launch_fwd<256, 64>(be, o, l, x, seg, s);
    else if (D == 128)
        launch_fwd<128, 64>(be, o, l, x, seg, s);
    else if (D == 64)
        launch_fwd<64, 64>(be, o, l, x, seg, s);
    else
        ref_fwd(be, out, lse, qkv, seg, s);
    GT_NVTX_POP();
}

/* Both paths: dsum (into dqkv), then the dK/dV and dQ kernels of the chosen path. */
static void attention_bwd(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                          const void *out, const void *lse, const int32_t *seg, attn_shape s,
                          int fast) {
    const size_t rows = (size_t)s.B * s.Hq * s.T;
    /* Split the G query heads of a group over blocks until the dK/dV grid covers the chip about
     * twice (one block per SM at D = 256), as far as the fp32 partials of the splits fit in the
     * workspace. Only small B T Hkv need splits, and then the partials are small too. */
    int hsplit = 1, hchunk = s.G;
    const size_t split_bytes = (size_t)s.B * s.T * s.Hkv * 2 * s.D * sizeof(float);
    if (fast && be->workspace) {
        const long long blocks = (long long)((s.T + KV_TILE - 1) / KV_TILE) * s.B * s.Hkv;
        long long want = (2LL * be->num_sms + blocks - 1) / blocks;
        const long long fit = (long long)(be->workspace_bytes / split_bytes);
        if (want > s.G) want = s.G;
        if (want > fit) want = fit;
        if (want > 1) {
            hchunk = (int)((s.G + want - 1) / want);
            hsplit = (s.G + hchunk - 1) / hchunk;
        }
    }
    float *part = hsplit > 1 ? (float *)be->workspace : NULL;
    float *dsum = (float *)dqkv;

    const bf16 *dO = (const bf16 *)dout, *x = (const bf16 *)qkv;
    const float *l = (const float *)lse;
    bf16 *dx = (bf16 *)dqkv;
    attention_dsum_kernel<<<ref_blocks((long long)rows), REF_WARPS * 32, 0, be->stream>>>(
        dsum, dO, (const bf16 *)out, s);
    CUDA_CHECK_LAUNCH();
    /* dK/dV first: the dQ kernels overwrite the dsum they both read. */
    if (!fast) {
        attention_ref_dkv_kernel<<<ref_blocks((long long)s.B * s.Hkv * s.T), REF_WARPS * 32, 0,
                                   be->stream>>>(dx, dO, x, l, dsum, seg, s);
        CUDA_CHECK_LAUNCH();
        attention_ref_dq_kernel<<<ref_blocks((long long)rows), REF_WARPS * 32, 0, be->stream>>>(
            dx, dO, x, l, dsum, seg, s);
        CUDA_CHECK_LAUNCH();
        return;
    }
    if (s.D == 256) {
        launch_dkv<256>(be, dx, part, dO, x, l, dsum, seg, s, hsplit, hchunk);
        launch_dq<256, 32>(be, dx, dO, x, l, dsum, seg, s);
    } else if (s.D == 128) {
        launch_dkv<128>(be, dx, part, dO, x, l, dsum, seg, s, hsplit, hchunk);
        launch_dq<128, 64>(be, dx, dO, x, l, dsum, seg, s);
    } else {
        launch_dkv<64>(be, dx, part, dO, x, l, dsum, seg, s, hsplit, hchunk);
        launch_dq<64, 64>(be, dx, dO, x, l, dsum, seg, s);
    }
    if (hsplit > 1) {
        const unsigned blocks = gt_grid_stride_blocks(be, (size_t)s.B * s.T * s.Hkv * s.D / 2, 256);
        attention_dkv_reduce_kernel<<<blocks, 256, 0, be->stream>>>(dx, part, s, hsplit);
        CUDA_CHECK_LAUNCH();
    }
}

extern "C" void gt_cuda_attention_ref_bwd(gt_backend *be, void *dqkv, const void *dout,
                                          const void *qkv, const void *out, const void *lse,
                                          const int32_t *seg, float scale, int B, int T, int Hq,
                                          int Hkv, int D) {
    const attn_shape s = make_shape(scale, B, T, Hq, Hkv, D);
    if (B * T == 0) return;
    GT_NVTX_PUSH("attention_ref_bwd");
    attention_bwd(be, dqkv, dout, qkv, out, lse, seg, s, 0);
    GT_NVTX_POP();
}

extern "C" void gt_cuda_attention_bwd(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                                      const void *out, const void *lse, const int32_t *seg,
                                      float scale, int B, int T, int Hq, int Hkv, int D) {
    const attn_shape s = make_shape(scale, B, T, Hq, Hkv, D);
    if (B * T == 0) return;
    GT_NVTX_PUSH("attention_bwd");
    attention_bwd(be, dqkv, dout, qkv, out, lse, seg, s, fast_dim(D));
    GT_NVTX_POP();
}
