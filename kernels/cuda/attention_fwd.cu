/* Attention forward: the fast tensor-core kernel and the entry points. See attention.cuh. */
#include "attention.cuh"

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
        mma_rows_tile<RB, BC, DB>(o, pa, tV, lc); /* O += P V */
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
    /* cuDNN's fused attention where it runs the case (no document mask; attention_cudnn.h) */
    if (!seg && gt_cudnn_attn_fwd(be->cudnn, out, lse, qkv, scale, B, T, Hq, Hkv, D)) {
        GT_NVTX_POP();
        return;
    }
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



extern "C" const char *gt_cuda_attention_impl(gt_backend *be, int has_seg, float scale, int B,
                                              int T, int Hq, int Hkv, int D) {
    return !has_seg && gt_cudnn_attn_supports(be->cudnn, scale, B, T, Hq, Hkv, D) ? "cudnn"
                                                                                   : "builtin";
}
