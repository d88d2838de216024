/* Decode attention over the KV cache, the cache writes and the greedy pick (gt_ops.kv_write,
 * attention_decode, argmax_rows), and CUDA graphs of the backend stream (gt_ops.graph_*).
 *
 * kc, vc [B, Hkv, Tmax, D] bf16; qkv[B, W], W = (Hq + 2 Hkv) D, grouped by KV group g:
 * [q_{gG} .. q_{gG+G-1}, k_g, v_g]; out[B, Hq D].
 *
 * Decode reads the whole cache for one query row per head: memory-bound. One block per (sequence,
 * KV group, split of the sequence) reads each K and V row of its split once, for all G query heads
 * of the group (MQA/GQA: the group shares the read), and writes unnormalized partial results (max,
 * sum of exp, sum of p v) per head; a second kernel combines the splits (flash-decoding). The
 * split count depends only on Tmax, not on the lengths, so a captured graph replays it for any
 * lengths. Scores and softmax in fp32. */
#include <math.h>

#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define DEC_THREADS 128
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_CHUNK 64 /* keys per split: short splits keep every SM busy at batch 1 (Gemma-2B: one KV head) */
#define DEC_MAX_G 8   /* query heads per KV group (static shared memory: 18 KiB) */
#define DEC_MAX_D 512

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

/* Block (b, g, s): keys [s*DEC_CHUNK, min(len, (s+1)*DEC_CHUNK)) of sequence b, KV group g.
 * part[((b*Hq + h)*S + s)*(D+2) + ...] = (o[0..D) unnormalized, max, sum). */
static __global__ void __launch_bounds__(DEC_THREADS)
decode_split_kernel(float *part, const bf16 *qkv, const bf16 *kc, const bf16 *vc, const int32_t *len, float scale,
                    int Hq, int Hkv, int D, int Tmax, int S) {
    __shared__ float q[DEC_MAX_G][DEC_MAX_D];
    __shared__ float p[DEC_MAX_G][DEC_CHUNK];
    __shared__ float stat[DEC_MAX_G][2];
    int b = blockIdx.x, g = blockIdx.y, s = blockIdx.z, G = Hq / Hkv;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    int n = len[b], j0 = s * DEC_CHUNK, j1 = min(n, j0 + DEC_CHUNK);
    const bf16 *qrow = qkv + (size_t)b * (Hq + 2 * Hkv) * D + (size_t)g * (G + 2) * D;
    for (int i = threadIdx.x; i < G * D; i += DEC_THREADS) q[i / D][i % D] = __bfloat162float(qrow[i]);
    __syncthreads();
    const bf16 *K = kc + ((size_t)b * Hkv + g) * Tmax * D, *V = vc + ((size_t)b * Hkv + g) * Tmax * D;
    /* scores: one warp per key, its lanes over D, all G heads at once */
    for (int j = j0 + warp; j < j1; j += DEC_WARPS) {
        float acc[DEC_MAX_G];
        for (int h = 0; h < G; h++) acc[h] = 0;
        for (int d = lane; d < D; d += 32) {
            float k = __bfloat162float(K[(size_t)j * D + d]);
            for (int h = 0; h < G; h++) acc[h] += q[h][d] * k;
        }
        for (int h = 0; h < G; h++) {
            float v = acc[h];
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == 0) p[h][j - j0] = v * scale;
        }
    }
    __syncthreads();
    /* softmax pieces per head: warp w takes heads w, w + DEC_WARPS, .. */
    for (int h = warp; h < G; h += DEC_WARPS) {
        float m = -INFINITY;
        for (int j = lane; j < j1 - j0; j += 32) m = fmaxf(m, p[h][j]);
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        float l = 0;
        for (int j = lane; j < j1 - j0; j += 32) {
            float e = m == -INFINITY ? 0.f : __expf(p[h][j] - m);
            p[h][j] = e;
            l += e;
        }
        for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
        if (lane == 0) stat[h][0] = m, stat[h][1] = l;
    }
    __syncthreads();
    /* o[h][d] = sum_j p[h][j] v_j[d]: threads over d, each V row read once */
    for (int d = threadIdx.x; d < D; d += DEC_THREADS) {
        float acc[DEC_MAX_G];
        for (int h = 0; h < G; h++) acc[h] = 0;
        for (int j = j0; j < j1; j++) {
            float v = __bfloat162float(V[(size_t)j * D + d]);
            for (int h = 0; h < G; h++) acc[h] += p[h][j - j0] * v;
        }
        for (int h = 0; h < G; h++) part[(((size_t)b * Hq + g * G + h) * S + s) * (D + 2) + d] = acc[h];
    }
    if (threadIdx.x < G) {
        float *st = part + (((size_t)b * Hq + g * G + threadIdx.x) * S + s) * (D + 2) + D;
        st[0] = stat[threadIdx.x][0];
        st[1] = stat[threadIdx.x][1];
    }
}

/* Block (b, h): out = sum_s o_s exp(m_s - M) / sum_s l_s exp(m_s - M). */
static __global__ void decode_combine_kernel(bf16 *out, const float *part, int Hq, int D, int S) {
    int b = blockIdx.x, h = blockIdx.y;
    const float *ps = part + ((size_t)b * Hq + h) * S * (D + 2);
    float M = -INFINITY;
    for (int s = 0; s < S; s++) M = fmaxf(M, ps[(size_t)s * (D + 2) + D]);
    float L = 0;
    for (int s = 0; s < S; s++) {
        float m = ps[(size_t)s * (D + 2) + D];
        if (m != -INFINITY) L += ps[(size_t)s * (D + 2) + D + 1] * __expf(m - M);
    }
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0;
        for (int s = 0; s < S; s++) {
            float m = ps[(size_t)s * (D + 2) + D];
            if (m != -INFINITY) o += ps[(size_t)s * (D + 2) + d] * __expf(m - M);
        }
        out[((size_t)b * Hq + h) * D + d] = __float2bfloat16(o / L);
    }
}

extern "C" void gt_cuda_attention_decode(gt_backend *be, void *out, const void *qkv, const void *kc, const void *vc,
                                         const int32_t *len, float scale, int B, int Hq, int Hkv, int D, int Tmax) {
    if (B == 0) return;
    GT_ASSERT(Hkv > 0 && Hq % Hkv == 0 && Hq / Hkv <= DEC_MAX_G && D <= DEC_MAX_D,
              "attention_decode: Hq=%d Hkv=%d D=%d (at most %d query heads per KV head, head_dim %d)", Hq, Hkv, D,
              DEC_MAX_G, DEC_MAX_D);
    int S = (Tmax + DEC_CHUNK - 1) / DEC_CHUNK;
    size_t bytes = (size_t)B * Hq * S * (D + 2) * sizeof(float);
    /* The partials' buffer grows outside graph capture only: a captured step's first run is direct. */
    if (bytes > be->decode_bytes) {
        cudaStreamCaptureStatus cs;
        CUDA_CHECK(cudaStreamIsCapturing(be->stream, &cs));
        GT_ASSERT(cs == cudaStreamCaptureStatusNone, "attention_decode: workspace growth during graph capture");
        CUDA_CHECK(cudaStreamSynchronize(be->stream));
        if (be->decode_ws) CUDA_CHECK(cudaFree(be->decode_ws));
        CUDA_CHECK(cudaMalloc(&be->decode_ws, bytes));
        be->decode_bytes = bytes;
    }
    GT_NVTX_PUSH("attention_decode");
    float *part = (float *)be->decode_ws;
    decode_split_kernel<<<dim3(B, Hkv, S), DEC_THREADS, 0, be->stream>>>(part, (const bf16 *)qkv, (const bf16 *)kc,
                                                                        (const bf16 *)vc, len, scale, Hq, Hkv, D,
                                                                        Tmax, S);
    CUDA_CHECK_LAUNCH();
    decode_combine_kernel<<<dim3(B, Hq), D < 128 ? 32 * ((D + 31) / 32) : 128, 0, be->stream>>>((bf16 *)out, part,
                                                                                                Hq, D, S);
    CUDA_CHECK_LAUNCH();
    GT_NVTX_POP();
}

/* ---- greedy pick: one block per row, first index of the largest value ---- */
static __global__ void argmax_rows_kernel(float *val, int32_t *idx, const bf16 *x, int V) {
    __shared__ float sv[32];
    __shared__ int si[32];
    const bf16 *row = x + (size_t)blockIdx.x * V;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int c = threadIdx.x; c < V; c += blockDim.x) {
        float v = __bfloat162float(row[c]);
        if (v > best) best = v, bi = c; /* a thread's columns rise: the first of equals stays */
    }
    for (int o = 16; o > 0; o >>= 1) {
        float v2 = __shfl_xor_sync(0xffffffffu, best, o);
        int i2 = __shfl_xor_sync(0xffffffffu, bi, o);
        if (v2 > best || (v2 == best && i2 < bi)) best = v2, bi = i2;
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    if (lane == 0) sv[warp] = best, si[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < nw; w++)
            if (sv[w] > sv[0] || (sv[w] == sv[0] && si[w] < si[0])) sv[0] = sv[w], si[0] = si[w];
        val[blockIdx.x] = sv[0];
        idx[blockIdx.x] = si[0] == 0x7fffffff ? 0 : si[0];
    }
}

extern "C" void gt_cuda_argmax_rows(gt_backend *be, void *val, int32_t *idx, const void *x, int N, int V) {
    if (N == 0) return;
    GT_NVTX_PUSH("argmax_rows");
    argmax_rows_kernel<<<N, 1024, 0, be->stream>>>((float *)val, idx, (const bf16 *)x, V);
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
