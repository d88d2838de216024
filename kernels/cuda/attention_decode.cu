/* Decode attention over the KV cache, the cache writes and the greedy pick (gt_ops.kv_write,
 * attention_decode, argmax_rows), and CUDA graphs of the backend stream (gt_ops.graph_*).
 *
 * kc, vc [B, Hkv, Tmax, D] bf16; qkv[B, W], W = (Hq + 2 Hkv) D, grouped by KV group g:
 * [q_{gG} .. q_{gG+G-1}, k_g, v_g]; out[B, Hq D].
 *
 * Decode reads the whole cache for one query row per head: memory-bound, and at batch 1 bound by
 * latency (Gemma-2B: one KV head, 384 keys = 0.4 MB per layer). So the work is cut fine: one warp
 * per (sequence, KV group, split of KS keys), an online softmax for all G query heads of the group
 * (MQA/GQA: the group shares every read), each lane's loads many at a time. Each split writes
 * unnormalized partial results (max, sum of exp, sum of p v) per head, splits past the sequence's
 * length nothing; a second kernel combines the used ones (flash-decoding). The split size depends
 * only on B, Hkv and Tmax, not on the lengths, so a captured graph replays it for any lengths.
 * Scores and softmax in fp32. */
#include <math.h>

#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define DEC_THREADS 128
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_MAX_G 8     /* query heads per KV group (registers: 8 heads' accumulators per lane) */
#define DEC_MAX_D 512   /* q of the group in shared memory: 16 KiB */
#define DEC_ROUND 8         /* keys a warp takes at once */
#define DEC_LANES_PER_KEY 4 /* lanes sharing a key's scores: 32 / DEC_ROUND */
#define DEC_MAX_SPLITS 256
#define DEC_TARGET_WARPS 1024 /* splits over the grid: enough warps in flight to hide the loads' latency */

static __global__ void kv_write_kernel(bf16 *kc, bf16 *vc, const bf16 *qkv, const int32_t *dst, int Hq,
                                       int Hkv, int D, int Tmax) {
    int i = blockIdx.x, g = blockIdx.y, G = Hq / Hkv;
    int b = dst[i] / Tmax, t = dst[i] % Tmax;
    const bf16 *src = qkv + (size_t)i * (Hq + 2 * Hkv) * D + ((size_t)g * (G + 2) + G) * D;
    size_t off = (((size_t)b * Hkv + g) * Tmax + t) * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        kc[off + d] = src[d];
        vc[off + d] = src[D + d];
    }
}

extern "C" void gt_cuda_kv_write(gt_backend *be, void *kc, void *vc, const void *qkv, const int32_t *dst, int N,
                                 int Hq, int Hkv, int D, int Tmax) {
    if (N == 0) return;
    GT_ASSERT(Hkv > 0 && Hq % Hkv == 0, "kv_write: bad heads Hq=%d Hkv=%d", Hq, Hkv);
    GT_NVTX_PUSH("kv_write");
    kv_write_kernel<<<dim3(N, Hkv), 128, 0, be->stream>>>((bf16 *)kc, (bf16 *)vc, (const bf16 *)qkv, dst, Hq, Hkv,
                                                          D, Tmax);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

/* be->decode_ws of at least `bytes` (attention_decode's split partials, argmax_rows' block
 * partials; stream-ordered, so one buffer serves both). It grows outside graph capture only: a
 * captured step's first run is direct. */
static void *decode_workspace(gt_backend *be, size_t bytes) {
    if (bytes > be->decode_bytes) {
        cudaStreamCaptureStatus cs;
        CUDA_CHECK(cudaStreamIsCapturing(be->stream, &cs));
        GT_ASSERT(cs == cudaStreamCaptureStatusNone, "decode workspace growth during graph capture");
        CUDA_CHECK(cudaStreamSynchronize(be->stream));
        if (be->decode_ws) CUDA_CHECK(cudaFree(be->decode_ws));
        CUDA_CHECK(cudaMalloc(&be->decode_ws, bytes));
        be->decode_bytes = bytes;
    }
    return be->decode_ws;
}

/* Warp (b, g, s), s = blockIdx.x * DEC_WARPS + warp: keys [s KS, min(len, (s+1) KS)) of sequence b,
 * KV group g, in rounds of DEC_ROUND (8) keys, so that a round costs one trip to memory for K and
 * one for V whatever D:
 *  - scores: key k of the round to lanes 4k..4k+3, lane 4k+q holding the vectors q, q + 4, .. of
 *    its K row (VEC elements each, all in flight together), against q of the group in shared
 *    memory; two shuffles sum the four partial dot products;
 *  - online softmax over the round (three shuffles for its max and sum), p to shared memory;
 *  - p v: lanes over D (lane i holds the vectors i, i + 32, .. of each V row), the round's 8 V rows
 *    in flight together (2 at a time on the element path of odd D).
 * po[((b Hq + h) S + s) D + d] = o[d] unnormalized, pml[(b Hq + h) S + s] = (max, sum); a split
 * starting at or past len[b] writes neither (decode_combine_kernel reads only the splits below). */
template <int VEC, int NV>
static __global__ void __launch_bounds__(DEC_THREADS)
decode_split_kernel(float *po, float2 *pml, const bf16 *qkv, const bf16 *kc, const bf16 *vc, const int32_t *len,
                    float scale, int Hq, int Hkv, int D, int Tmax, int KS, int S) {
    constexpr int E = NV * VEC;                     /* p v: elements per lane of a row */
    constexpr int UK = 8;                           /* K vectors in flight per lane (D > 32 VEC: two trips) */
    constexpr int UV = VEC == GT_VEC ? DEC_ROUND : 2; /* V rows in flight (the element path: registers) */
    __shared__ float qs[DEC_MAX_G * DEC_MAX_D];
    __shared__ float ps[DEC_WARPS][DEC_MAX_G][DEC_ROUND];
    int b = blockIdx.z, g = blockIdx.y, G = Hq / Hkv;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, s = blockIdx.x * DEC_WARPS + warp;
    int kk = lane / DEC_LANES_PER_KEY, qq = lane % DEC_LANES_PER_KEY;
    const bf16 *qrow = qkv + (size_t)b * (Hq + 2 * Hkv) * D + (size_t)g * (G + 2) * D;
    if (VEC == GT_VEC)
        for (int i = threadIdx.x * GT_VEC; i < G * D; i += DEC_THREADS * GT_VEC) gt_load8(qrow + i, qs + i);
    else
        for (int i = threadIdx.x; i < G * D; i += DEC_THREADS) qs[i] = __bfloat162float(qrow[i]);
    __syncthreads();
    int j0 = s * KS;
    if (s >= S || j0 >= len[b]) return; /* no block barrier below */
    int j1 = min(len[b], j0 + KS), nvec = D / VEC;
    const bf16 *K = kc + ((size_t)b * Hkv + g) * Tmax * D, *V = vc + ((size_t)b * Hkv + g) * Tmax * D;
    float m[DEC_MAX_G], l[DEC_MAX_G], acc[DEC_MAX_G][E];
#pragma unroll
    for (int h = 0; h < DEC_MAX_G; h++) {
        m[h] = -INFINITY, l[h] = 0.f;
#pragma unroll
        for (int e = 0; e < E; e++) acc[h][e] = 0.f;
    }
    for (int c0 = j0; c0 < j1; c0 += DEC_ROUND) {
        int ok = c0 + kk < j1;
        const bf16 *kr = K + (size_t)(ok ? c0 + kk : c0) * D; /* lanes past the end read a real row, unused */
        float sc[DEC_MAX_G];
#pragma unroll
        for (int h = 0; h < DEC_MAX_G; h++) sc[h] = 0.f;
        for (int v0 = qq; v0 < nvec; v0 += UK * DEC_LANES_PER_KEY) {
            gt_raw_bf16<VEC> kraw[UK];
#pragma unroll
            for (int u = 0; u < UK; u++) {
                int v = v0 + u * DEC_LANES_PER_KEY;
                kraw[u] = v < nvec ? gt_raw_load<VEC>(kr + v * VEC) : gt_raw_zero<VEC>();
            }
#pragma unroll
            for (int u = 0; u < UK; u++) {
                int v = v0 + u * DEC_LANES_PER_KEY;
                if (v >= nvec) break;
                float kf[VEC];
                gt_raw_unpack<VEC>(kraw[u], kf);
#pragma unroll
                for (int h = 0; h < DEC_MAX_G; h++)
                    if (h < G)
#pragma unroll
                        for (int e = 0; e < VEC; e++) sc[h] += qs[h * D + v * VEC + e] * kf[e];
            }
        }
#pragma unroll
        for (int h = 0; h < DEC_MAX_G; h++) {
            if (h >= G) continue; /* G is the same over the warp: the shuffles see all lanes */
            float dot = sc[h];
            dot += __shfl_xor_sync(0xffffffffu, dot, 1);
            dot += __shfl_xor_sync(0xffffffffu, dot, 2); /* the key's four lanes hold its score */
            float x = ok ? dot * scale : -INFINITY, rm = x;
#pragma unroll
            for (int o = DEC_LANES_PER_KEY; o < 32; o <<= 1) rm = fmaxf(rm, __shfl_xor_sync(0xffffffffu, rm, o));
            float mx = fmaxf(m[h], rm); /* finite: the round's first key is always in range */
            float corr = __expf(m[h] - mx); /* 0 at the first round (m = -inf) */
            float p = ok ? __expf(x - mx) : 0.f, ls = p;
#pragma unroll
            for (int o = DEC_LANES_PER_KEY; o < 32; o <<= 1) ls += __shfl_xor_sync(0xffffffffu, ls, o);
            l[h] = l[h] * corr + ls;
#pragma unroll
            for (int e = 0; e < E; e++) acc[h][e] *= corr;
            m[h] = mx;
            if (qq == 0) ps[warp][h][kk] = p;
        }
        __syncwarp();
        int n = min(DEC_ROUND, j1 - c0);
#pragma unroll
        for (int t0 = 0; t0 < DEC_ROUND; t0 += UV) {
            if (t0 >= n) break;
            gt_raw_bf16<VEC> vraw[UV][NV];
#pragma unroll
            for (int u = 0; u < UV; u++)
#pragma unroll
                for (int i = 0; i < NV; i++) {
                    int v = i * 32 + lane;
                    vraw[u][i] = t0 + u < n && v < nvec ? gt_raw_load<VEC>(V + (size_t)(c0 + t0 + u) * D + v * VEC)
                                                        : gt_raw_zero<VEC>();
                }
#pragma unroll
            for (int u = 0; u < UV; u++) {
                if (t0 + u >= n) break;
                float vf[E];
#pragma unroll
                for (int i = 0; i < NV; i++) gt_raw_unpack<VEC>(vraw[u][i], vf + i * VEC);
#pragma unroll
                for (int h = 0; h < DEC_MAX_G; h++) {
                    if (h >= G) continue;
                    float p = ps[warp][h][t0 + u];
#pragma unroll
                    for (int e = 0; e < E; e++) acc[h][e] += p * vf[e];
                }
            }
        }
        __syncwarp(); /* ps is read before the next round writes it */
    }
#pragma unroll
    for (int h = 0; h < DEC_MAX_G; h++) {
        if (h >= G) continue;
        size_t row = ((size_t)b * Hq + g * G + h) * S + s;
        float *dst = po + row * D;
#pragma unroll
        for (int i = 0; i < NV; i++) {
            int v = i * 32 + lane;
            if (v < nvec)
#pragma unroll
                for (int e = 0; e < VEC; e++) dst[v * VEC + e] = acc[h][i * VEC + e];
        }
        if (lane == 0) pml[row] = make_float2(m[h], l[h]);
    }
}

#define COMBINE_THREADS 256
#define COMBINE_CV 4       /* floats per column group on the vector path: one 16-byte load */
#define COMBINE_INFLIGHT 8 /* splits whose loads a thread has in flight together */

/* CV consecutive floats of a partial o row: one float4 (CV = 4, p 16-byte aligned) or one float. */
template <int CV>
static __device__ __forceinline__ void combine_load(const float *p, float *x) {
    if (CV == COMBINE_CV) {
        float4 v = *(const float4 *)p;
        x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
    } else
        x[0] = p[0];
}

/* Block (b, h): out = sum_s o_s exp(m_s - M) / sum_s l_s exp(m_s - M), M = max_s m_s, over the
 * n = ceil(len[b] / KS) splits that hold keys (the split kernel wrote no others). The weights
 * exp(m_s - M) go to shared memory once. Then the D columns are cut into groups of CV floats
 * (float4 loads where D % 4 == 0, else CV = 1), P = min(D / CV, 256) groups a pass, and the
 * threads into R = 256 / P split groups: thread (r, c) sums splits r, r + R, .. of its column
 * group with COMBINE_INFLIGHT loads in flight (Gemma-2B, D 256: 64 groups, 4 split groups of 12
 * of the 48 splits); after a barrier the threads r = 0 add the R partial sums, r = 0 first.
 * Fixed order everywhere: deterministic. */
template <int CV>
static __global__ void __launch_bounds__(COMBINE_THREADS)
decode_combine_kernel(bf16 *out, const float *po, const float2 *pml, const int32_t *len, int Hq, int D, int KS,
                      int S) {
    __shared__ float wgt[DEC_MAX_SPLITS];
    __shared__ float scratch[32];
    __shared__ __align__(16) float red[COMBINE_THREADS * COMBINE_CV]; /* [R][P][CV]: a pass's partial sums */
    int b = blockIdx.x, h = blockIdx.y, t = threadIdx.x;
    int n = min(S, (len[b] + KS - 1) / KS); /* len[b] == 0: n = 0, nothing read (out 0 / 0: NaN) */
    const float2 *ml = pml + ((size_t)b * Hq + h) * S; /* [S] (max, sum) */
    const float *ps = po + ((size_t)b * Hq + h) * S * D; /* [S, D] */
    float M = -INFINITY;
    for (int s = t; s < n; s += COMBINE_THREADS) M = fmaxf(M, ml[s].x);
    M = gt_warp_max(M);
    if (t % 32 == 0) scratch[t / 32] = M;
    __syncthreads();
    M = scratch[0];
    for (int w = 1; w < COMBINE_THREADS / 32; w++) M = fmaxf(M, scratch[w]);
    float L = 0.f;
    for (int s = t; s < n; s += COMBINE_THREADS) {
        float2 v = ml[s];
        float e = v.x == -INFINITY ? 0.f : __expf(v.x - M);
        wgt[s] = e;
        L += v.y * e;
    }
    L = gt_block_sum(L, scratch); /* its barriers also publish wgt */
    int groups = D / CV, P = min(groups, COMBINE_THREADS), R = COMBINE_THREADS / P, c = t % P, r = t / P;
    for (int c0 = 0; c0 < groups; c0 += P) { /* passes: D / CV > 256 only for CV = 1, D up to 512 */
        int cg = c0 + c;
        float acc[CV];
#pragma unroll
        for (int k = 0; k < CV; k++) acc[k] = 0.f;
        if (r < R && cg < groups) {
            const float *col = ps + (size_t)cg * CV;
            for (int s0 = r; s0 < n; s0 += COMBINE_INFLIGHT * R) {
                float x[COMBINE_INFLIGHT][CV];
#pragma unroll
                for (int u = 0; u < COMBINE_INFLIGHT; u++) {
                    int s = s0 + u * R;
                    if (s < n) combine_load<CV>(col + (size_t)s * D, x[u]);
                }
#pragma unroll
                for (int u = 0; u < COMBINE_INFLIGHT; u++) {
                    int s = s0 + u * R;
                    if (s >= n) break; /* wgt past n is not written */
                    float w = wgt[s];
#pragma unroll
                    for (int k = 0; k < CV; k++) acc[k] += x[u][k] * w;
                }
            }
        }
        if (r < R)
#pragma unroll
            for (int k = 0; k < CV; k++) red[t * CV + k] = acc[k];
        __syncthreads();
        if (r == 0 && cg < groups) {
            float o[CV];
#pragma unroll
            for (int k = 0; k < CV; k++) o[k] = red[c * CV + k];
            for (int q = 1; q < R; q++)
#pragma unroll
                for (int k = 0; k < CV; k++) o[k] += red[(q * P + c) * CV + k];
            bf16 *dst = out + ((size_t)b * Hq + h) * D + (size_t)cg * CV;
#pragma unroll
            for (int k = 0; k < CV; k++) dst[k] = __float2bfloat16(o[k] / L);
        }
        if (c0 + P < groups) __syncthreads(); /* red is read before the next pass writes it */
    }
}

/* Keys per split: splits enough for DEC_TARGET_WARPS warps over the grid (a batch of many
 * sequences needs few splits, and fewer partials to write and combine), a multiple of the
 * kernel's round of keys (DEC_ROUND), at most DEC_MAX_SPLITS splits. */
static int decode_split_keys(int B, int Hkv, int Tmax) {
    int want = (DEC_TARGET_WARPS + B * Hkv - 1) / (B * Hkv);
    if (want > DEC_MAX_SPLITS) want = DEC_MAX_SPLITS;
    int ks = (Tmax + want - 1) / want;
    ks = (ks + DEC_ROUND - 1) / DEC_ROUND * DEC_ROUND;
    return ks;
}

template <int VEC, int NV>
static void launch_split(gt_backend *be, float *po, float2 *pml, const void *qkv, const void *kc, const void *vc,
                         const int32_t *len, float scale, int B, int Hq, int Hkv, int D, int Tmax, int KS, int S) {
    dim3 grid((S + DEC_WARPS - 1) / DEC_WARPS, Hkv, B);
    decode_split_kernel<VEC, NV><<<grid, DEC_THREADS, 0, be->stream>>>(
        po, pml, (const bf16 *)qkv, (const bf16 *)kc, (const bf16 *)vc, len, scale, Hq, Hkv, D, Tmax, KS, S);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_attention_decode(gt_backend *be, void *out, const void *qkv, const void *kc, const void *vc,
                                         const int32_t *len, float scale, int B, int Hq, int Hkv, int D, int Tmax) {
    if (B == 0) return;
    GT_ASSERT(Hkv > 0 && Hq % Hkv == 0 && Hq / Hkv <= DEC_MAX_G && D <= DEC_MAX_D,
              "attention_decode: Hq=%d Hkv=%d D=%d (at most %d query heads per KV head, head_dim %d)", Hq, Hkv, D,
              DEC_MAX_G, DEC_MAX_D);
    int KS = decode_split_keys(B, Hkv, Tmax), S = (Tmax + KS - 1) / KS;
    /* po [B, Hq, S, D] floats, then pml [B, Hq, S] float2 at the next 16-byte boundary */
    size_t po_bytes = (size_t)B * Hq * S * D * sizeof(float), pml_off = (po_bytes + 15) / 16 * 16;
    char *ws = (char *)decode_workspace(be, pml_off + (size_t)B * Hq * S * sizeof(float2));
    float *po = (float *)ws;
    float2 *pml = (float2 *)(ws + pml_off);
    GT_NVTX_PUSH("attention_decode");
    /* 16-byte vectors where rows are whole vectors, else one element at a time (odd head_dim) */
    int vec = D % GT_VEC == 0 && gt_aligned16(qkv) && gt_aligned16(kc) && gt_aligned16(vc);
    if (vec && D <= 32 * GT_VEC)
        launch_split<GT_VEC, 1>(be, po, pml, qkv, kc, vc, len, scale, B, Hq, Hkv, D, Tmax, KS, S);
    else if (vec)
        launch_split<GT_VEC, 2>(be, po, pml, qkv, kc, vc, len, scale, B, Hq, Hkv, D, Tmax, KS, S);
    else
        launch_split<1, DEC_MAX_D / 32>(be, po, pml, qkv, kc, vc, len, scale, B, Hq, Hkv, D, Tmax, KS, S);
    /* float4 columns where the o rows are whole, 16-byte aligned vectors */
    if (D % COMBINE_CV == 0 && gt_aligned16(po))
        decode_combine_kernel<COMBINE_CV>
            <<<dim3(B, Hq), COMBINE_THREADS, 0, be->stream>>>((bf16 *)out, po, pml, len, Hq, D, KS, S);
    else
        decode_combine_kernel<1>
            <<<dim3(B, Hq), COMBINE_THREADS, 0, be->stream>>>((bf16 *)out, po, pml, len, Hq, D, KS, S);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

/* ---- greedy pick: the first index of the largest value of each row ----
 * Two passes, so that a batch-1 row of 256,000 logits is read by many blocks: block (c, row) picks
 * over its slice of the row, then one warp per row picks over the slices, lower index on ties. */
#define ARGMAX_THREADS 256
#define ARGMAX_MIN_COLS 4096 /* columns per slice at least */

static __device__ __forceinline__ void argmax_merge(float *best, int *bi, float v, int i) {
    if (v > *best || (v == *best && i < *bi)) *best = v, *bi = i;
}

static __device__ __forceinline__ void argmax_warp(float *best, int *bi) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, *best, o);
        int i = __shfl_xor_sync(0xffffffffu, *bi, o);
        argmax_merge(best, bi, v, i);
    }
}

/* part[row * P + c] = (best value, its index) over columns [c cols, (c+1) cols) of row. */
static __global__ void argmax_slice_kernel(float2 *part, const bf16 *x, int V, int cols) {
    __shared__ float sv[ARGMAX_THREADS / 32];
    __shared__ int si[ARGMAX_THREADS / 32];
    int c = blockIdx.x, P = gridDim.x, row = blockIdx.y;
    const bf16 *r = x + (size_t)row * V;
    int c1 = min(V, (c + 1) * cols);
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = c * cols + threadIdx.x; i < c1; i += ARGMAX_THREADS) {
        float v = __bfloat162float(r[i]);
        if (v > best) best = v, bi = i; /* a thread's columns rise: the first of equals stays */
    }
    argmax_warp(&best, &bi);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) sv[warp] = best, si[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < ARGMAX_THREADS / 32; w++) argmax_merge(&sv[0], &si[0], sv[w], si[w]);
        part[(size_t)row * P + c] = make_float2(sv[0], __int_as_float(si[0]));
    }
}

/* One warp per row over its P slices. A row of -inf or NaN only picks index 0. */
static __global__ void argmax_final_kernel(float *val, int32_t *idx, const float2 *part, int P) {
    int row = blockIdx.x;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int c = threadIdx.x; c < P; c += 32) {
        float2 p = part[(size_t)row * P + c];
        argmax_merge(&best, &bi, p.x, __float_as_int(p.y));
    }
    argmax_warp(&best, &bi);
    if (threadIdx.x == 0) {
        val[row] = best;
        idx[row] = bi == 0x7fffffff ? 0 : bi;
    }
}

extern "C" void gt_cuda_argmax_rows(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V) {
    if (N == 0) return;
    /* slices: about four blocks per SM over the whole batch, each of ARGMAX_MIN_COLS columns at least */
    int P = (4 * be->num_sms + N - 1) / N, most = (V + ARGMAX_MIN_COLS - 1) / ARGMAX_MIN_COLS;
    if (P > most) P = most;
    if (P < 1) P = 1;
    int cols = (V + P - 1) / P;
    float2 *part = (float2 *)decode_workspace(be, (size_t)N * P * sizeof(float2));
    GT_NVTX_PUSH("argmax_rows");
    argmax_slice_kernel<<<dim3(P, N), ARGMAX_THREADS, 0, be->stream>>>(part, (const bf16 *)x, V, cols);
    CUDA_CHECK_LAUNCH();
    argmax_final_kernel<<<N, 32, 0, be->stream>>>((float *)val, idx, part, P);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

/* ---- CUDA graphs of the backend stream (gt_ops.graph_*) ---- */

extern "C" void gt_cuda_graph_begin(gt_backend *be) {
    CUDA_CHECK(cudaStreamBeginCapture(be->stream, cudaStreamCaptureModeThreadLocal));
}

extern "C" void *gt_cuda_graph_end(gt_backend *be) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_CHECK(cudaStreamEndCapture(be->stream, &graph));
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph));
    return (void *)exec;
}

extern "C" void gt_cuda_graph_launch(gt_backend *be, void *graph) {
    CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, be->stream));
}

extern "C" void gt_cuda_graph_destroy(gt_backend *be, void *graph) {
    CUDA_CHECK(cudaStreamSynchronize(be->stream));
    CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}
