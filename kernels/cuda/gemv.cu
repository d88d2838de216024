/* matmul_fwd's few-row case (decode steps): y[N,OC] = x[N,IC] W[OC,IC]^T for N <= GT_GEMV_MAX_ROWS,
 * bf16 x, W and y, fp32 sums, each y rounded to bf16 once (nearest even).
 *
 * Why: a batch-1 decode step is bound by reading the weights once (Gemma-2B: 5.0 GB a token), and
 * cuBLASLt's tiles at 1..8 rows leave most of the chip idle on the narrow GEMMs (Gemma-2B's qkv
 * and o_proj, 8-10 MB: 32-40 thread blocks on 132 SMs, 1.0-1.3 TB/s on an H200) and read fc2 at
 * 3.2 TB/s. The shapes (IC -> OC): Gemma-2B qkv 2048 -> 2560, o 2048 -> 2048, fc1 2048 -> 32768,
 * fc2 16384 -> 2048, lm_head 2048 -> 256000; Gemma-7B 3072 -> 12288, 4096 -> 3072, 3072 -> 49152,
 * 24576 -> 3072, 3072 -> 256000.
 *
 * W is row-major [OC, IC] (HF layout), each row contiguous in IC. A block is GEMV_WARPS warps; a
 * warp takes RPW rows of W together (a row group), and KS warps of the block (KS = 1, 2, 4 or 8,
 * chosen on the host: the narrow GEMMs split, the wide ones do not) split a row group's columns
 * into interleaved rounds. In a round a lane issues GEMV_LOADS(N) 16-byte loads of W at once, U =
 * GEMV_LOADS(N) / RPW vectors of 8 columns from each of its rows (a warp's 32 lanes: 256 contiguous
 * columns per vector), before it uses any: that, and enough warps per SM, is what keeps HBM busy.
 * They skip L1, so that x (4 KB to 400 KB, read by every block) stays there: x comes through the
 * read-only path (__ldg), one vector per (column vector, row of x), used for all RPW rows of W. So
 * W is read once for all N rows of x, and x's L1 reads are N / RPW times W's. A lane sums its
 * columns in order in fp32, then a warp's lanes are summed by a shuffle tree, then (KS > 1) the KS
 * warps' sums in warp order through shared memory: a fixed order, no atomics; the bits depend only
 * on N, IC, OC, the SM count and the pointers' alignment. No allocation and no host sync: it is
 * captured in the decode step's CUDA graphs.
 *
 * Where IC is not a multiple of 8 or x or W is not 16-byte aligned, the same kernel runs one
 * element per load (the scalar path); OC is any value. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define GEMV_THREADS 256
#define GEMV_WARPS (GEMV_THREADS / 32)
/* Rows of W a warp takes together: x's L1 reads are at most twice W's (N / RPW). */
#define GEMV_RPW(NR) ((NR) <= 2 ? 2 : 4)
/* Loads of W a lane issues at once, and the blocks an SM holds (launch bounds: at most 80 registers
 * a thread at N = 1, 128 above). The pair is one that ptxas schedules with every load of a round
 * ahead of the round's first FMA, without spills (seen in the SASS of CUDA 13.0): 8 loads (128
 * bytes a lane) at N <= 4, 4 at N >= 5 (with 8 there, ptxas holds half of them back behind the
 * first FMAs for want of registers, which costs a second trip to memory a round). In flight per
 * SM: 24 warps x 4 KB at N = 1, 16 x 4 KB at N = 2..4, 16 x 2 KB at N = 5..8. */
#define GEMV_LOADS(NR) ((NR) <= 4 ? 8 : 4)
#define GEMV_MIN_BLOCKS(NR) ((NR) == 1 ? 3 : 2)
/* Warps per SM the column split aims the grid at: the narrow GEMMs are one wave (Gemma-2B's
 * o_proj: 8.4 MB over 132 SMs), so their time is a few trips to memory, fewer the more warps
 * share a row group's columns. */
#define GEMV_WARPS_PER_SM 32

/* One load of W (VEC = GT_VEC: 16 bytes, p 16-byte aligned; VEC = 1: one element): W is read once
 * per call, so it does not allocate in L1 (kept for x), with a 256-byte L2 prefetch hint. */
template <int VEC> static __device__ __forceinline__ gt_raw_bf16<VEC> load_w(const bf16 *p) {
    gt_raw_bf16<VEC> r;
    if constexpr (VEC == GT_VEC) {
#if __CUDA_ARCH__ >= 800
        asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
            : "=r"(r.v.x), "=r"(r.v.y), "=r"(r.v.z), "=r"(r.v.w)
            : "l"(p));
#else
        r.v = __ldg((const uint4 *)p);
#endif
    } else {
        r.v = __ldg((const unsigned short *)p);
    }
    return r;
}

/* One load of x through the read-only path (L1): every block of the grid reads all of it. */
template <int VEC> static __device__ __forceinline__ gt_raw_bf16<VEC> load_x(const bf16 *p) {
    gt_raw_bf16<VEC> r;
    if constexpr (VEC == GT_VEC)
        r.v = __ldg((const uint4 *)p);
    else
        r.v = __ldg((const unsigned short *)p);
    return r;
}

/* One round of a lane: U vectors of VEC columns from each of its RPW rows of W, at wp[r], wp[r] +
 * 32 VEC, .. (all U RPW loads issued together), each against the same columns of the NR rows
 * of x (xp: row 0 at the lane's first column; rows IC apart), summed in order into acc. TAIL: the
 * round may end past IC, `left` columns from the lane's first (columns past IC read nothing). */
template <int VEC, int NR, int RPW, bool TAIL>
static __device__ __forceinline__ void gemv_round(float (&acc)[RPW][NR], const bf16 *const (&wp)[RPW],
                                                  const bf16 *xp, int IC, int left) {
    constexpr int U = GEMV_LOADS(NR) / RPW;
    constexpr int STEP = 32 * VEC; /* columns of one vector load across the warp */
    gt_raw_bf16<VEC> wv[U][RPW];
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
        for (int r = 0; r < RPW; r++)
            wv[u][r] = !TAIL || u * STEP < left ? load_w<VEC>(wp[r] + u * STEP) : gt_raw_zero<VEC>();
#pragma unroll
    for (int u = 0; u < U; u++) {
        if (TAIL && u * STEP >= left) break;
        float wf[RPW][VEC];
#pragma unroll
        for (int r = 0; r < RPW; r++) gt_raw_unpack<VEC>(wv[u][r], wf[r]);
#pragma unroll
        for (int n = 0; n < NR; n++) {
            float xf[VEC];
            gt_raw_unpack<VEC>(load_x<VEC>(xp + (size_t)n * IC + u * STEP), xf);
#pragma unroll
            for (int r = 0; r < RPW; r++)
#pragma unroll
                for (int e = 0; e < VEC; e++) acc[r][n] = fmaf(wf[r][e], xf[e], acc[r][n]);
        }
    }
}

/* Warp w of block b: row group g = b (GEMV_WARPS / KS) + w / KS, rows g RPW .. g RPW + RPW - 1, and
 * column split s = w % KS of them: the rounds s, s + KS, s + 2 KS, .. of R = U 32 VEC columns each
 * (lane l: columns from round start + l VEC, gemv_round). Only the one round that holds column IC - 1
 * with IC not a multiple of R is partial; rows past OC read row OC - 1 (no predicate in the full
 * rounds) and write nothing. Writes y[n, row] for the block's rows, n < NR. */
template <int VEC, int NR, int RPW>
static __global__ void __launch_bounds__(GEMV_THREADS, GEMV_MIN_BLOCKS(NR))
gemv_kernel(bf16 *y, const bf16 *x, const bf16 *w, int IC, int OC, int KS) {
    constexpr int R = GEMV_LOADS(NR) / RPW * 32 * VEC;
    constexpr int V = RPW * NR; /* sums per warp */
    static_assert(V <= 32, "one lane per sum when storing");
    __shared__ float part[GEMV_WARPS][V];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, s = warp % KS;
    int groups = GEMV_WARPS / KS, row0 = (blockIdx.x * groups + warp / KS) * RPW;
    int c0 = s * R, stride = KS * R;
    const bf16 *wp[RPW];
#pragma unroll
    for (int r = 0; r < RPW; r++) wp[r] = w + (size_t)min(row0 + r, OC - 1) * IC + c0 + lane * VEC;
    const bf16 *xp = x + c0 + lane * VEC;
    float acc[RPW][NR];
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int n = 0; n < NR; n++) acc[r][n] = 0.0f;
    for (; c0 + R <= IC; c0 += stride) {
        gemv_round<VEC, NR, RPW, false>(acc, wp, xp, IC, R);
#pragma unroll
        for (int r = 0; r < RPW; r++) wp[r] += stride;
        xp += stride;
    }
    if (c0 < IC) gemv_round<VEC, NR, RPW, true>(acc, wp, xp, IC, IC - c0 - lane * VEC);

    /* every lane ends with every sum of the warp (the xor tree adds the same pairs on all lanes) */
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int n = 0; n < NR; n++) acc[r][n] = gt_warp_sum(acc[r][n]);
    if (KS == 1) {
#pragma unroll
        for (int r = 0; r < RPW; r++)
#pragma unroll
            for (int n = 0; n < NR; n++)
                if (lane == r * NR + n && row0 + r < OC)
                    y[(size_t)n * OC + row0 + r] = __float2bfloat16_rn(acc[r][n]);
        return; /* KS is the same for the whole block: no barrier below is skipped by part of it */
    }
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int n = 0; n < NR; n++)
            if (lane == r * NR + n) part[warp][r * NR + n] = acc[r][n];
    __syncthreads();
    int t = threadIdx.x;
    if (t >= groups * V) return;
    int g = t / V, j = t % V, r = j / NR, n = j % NR;
    int row = (blockIdx.x * groups + g) * RPW + r;
    float sum = part[g * KS][j];
    for (int k = 1; k < KS; k++) sum += part[g * KS + k][j];
    if (row < OC) y[(size_t)n * OC + row] = __float2bfloat16_rn(sum);
}

/* The column split KS of a row group: doubled (up to the block's GEMV_WARPS warps) while the grid
 * holds fewer than GEMV_WARPS_PER_SM warps per SM and each warp keeps at least one full round of
 * `round` columns. Gemma-2B at N = 1: qkv and o_proj 2, fc2 8, fc1 and the lm_head 1. */
static int column_split(const gt_backend *be, int IC, int OC, int rpw, int round) {
    long long groups = (OC + rpw - 1) / rpw, want = (long long)be->num_sms * GEMV_WARPS_PER_SM;
    int ks = 1;
    while (ks < GEMV_WARPS && groups * ks < want && IC / (2 * ks) >= round) ks *= 2;
    return ks;
}

template <int NR>
static void gemv_launch(gt_backend *be, bf16 *y, const bf16 *x, const bf16 *w, int IC, int OC, int vec) {
    constexpr int RPW = GEMV_RPW(NR);
    int ks = column_split(be, IC, OC, RPW, 32 * (vec ? GT_VEC : 1) * (GEMV_LOADS(NR) / RPW));
    int rows = GEMV_WARPS / ks * RPW;
    unsigned blocks = (unsigned)((OC + rows - 1) / rows);
    if (vec)
        gemv_kernel<GT_VEC, NR, RPW><<<blocks, GEMV_THREADS, 0, be->stream>>>(y, x, w, IC, OC, ks);
    else
        gemv_kernel<1, NR, RPW><<<blocks, GEMV_THREADS, 0, be->stream>>>(y, x, w, IC, OC, ks);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_gemv(gt_backend *be, void *y, const void *x, const void *w, int N, int IC, int OC) {
    GT_ASSERT(N >= 1 && N <= GT_GEMV_MAX_ROWS && IC > 0 && OC > 0, "gemv: N=%d IC=%d OC=%d", N, IC, OC);
    int vec = IC % GT_VEC == 0 && gt_aligned16(x) && gt_aligned16(w);
    bf16 *yb = (bf16 *)y;
    const bf16 *xb = (const bf16 *)x, *wb = (const bf16 *)w;
    switch (N) {
    case 1: gemv_launch<1>(be, yb, xb, wb, IC, OC, vec); break;
    case 2: gemv_launch<2>(be, yb, xb, wb, IC, OC, vec); break;
    case 3: gemv_launch<3>(be, yb, xb, wb, IC, OC, vec); break;
    case 4: gemv_launch<4>(be, yb, xb, wb, IC, OC, vec); break;
    case 5: gemv_launch<5>(be, yb, xb, wb, IC, OC, vec); break;
    case 6: gemv_launch<6>(be, yb, xb, wb, IC, OC, vec); break;
    case 7: gemv_launch<7>(be, yb, xb, wb, IC, OC, vec); break;
    default: gemv_launch<8>(be, yb, xb, wb, IC, OC, vec); break;
    }
}
