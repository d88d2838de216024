/* Attention backward: the fast dQ and dK/dV kernels, the reduction of split partials, and the
 * entry points. See attention.cuh. */
#include "attention.cuh"

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
        mma_rows_tile<RB, BC, DB>(dq, da, tK, lc); /* dQ += dS K */
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
    if (seg || !gt_cudnn_attn_bwd(be->cudnn, dqkv, dout, qkv, out, lse, scale, B, T, Hq, Hkv, D))
        attention_bwd(be, dqkv, dout, qkv, out, lse, seg, s, fast_dim(D));
    GT_NVTX_POP();
}

