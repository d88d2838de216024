/* Rotary position embedding, in place on the q and k heads of the fused qkv rows.
 *
 * qkv[N, (Hq + 2*Hkv) * D] is grouped by KV group g: [q heads (G of them), k_g, v_g], G = Hq / Hkv.
 * Element d < D/2 pairs with d + D/2 (non-interleaved halves):
 *   forward   y1 = x1 cos - x2 sin,    y2 = x2 cos + x1 sin
 *   backward  dx1 = dy1 cos + dy2 sin, dx2 = dy2 cos - dy1 sin   (the inverse rotation)
 * v heads are left alone. rope_kv_write is the forward with decode's KV-cache write in the same
 * launch (kernels/ops.h; kc, vc [B, Hkv, Tmax, D]).
 *
 * Angles exactly as HF's GemmaRotaryEmbedding, all in fp32: inv_freq[i] = 1 / theta^(float(2i)/D),
 * angle = float(pos) * inv_freq[i]. inv_freq is computed on the host (IEEE fp32, pow in double
 * rounded to fp32). So that no compiler flag (--use_fast_math would turn cosf/sinf and fp32
 * products into approximate or contracted forms) changes them, the angle uses the explicitly
 * rounded __fmul_rn and cos/sin are evaluated in double and rounded to fp32: the correctly rounded
 * fp32 values, as accurate as torch's precise float functions. HF also rounds
 * cos/sin and each product to bf16 in a bf16 model; as the op contract asks, we keep fp32 and round
 * once per output element. */
#include <math.h>

#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

#define MAX_HALF 256 /* D <= 512 */

/* inv_freq[i] = 1 / theta^(float(2i) / D), computed once per call on the host in IEEE fp32 (pow in
 * double, rounded: the correctly rounded fp32 power) and passed by value to the kernel. */
typedef struct {
    float inv_freq[MAX_HALF];
} rope_freqs;

static rope_freqs make_freqs(float theta, int D) {
    rope_freqs f;
    memset(&f, 0, sizeof f);
    for (int i = 0; i < D / 2; i++) {
        float expo = (float)(2 * i) / (float)D;
        float base_pow = (float)pow((double)theta, (double)expo);
        f.inv_freq[i] = 1.0f / base_pow;
    }
    return f;
}

/* cos and sin, as fp32, of angle float(p) * inv_freq (one fp32 product, as HF). */
static __device__ __forceinline__ void rope_angle(int p, float inv_freq, float *c, float *s) {
    double angle = (double)__fmul_rn((float)p, inv_freq);
    double sd, cd;
    sincos(angle, &sd, &cd);
    *c = (float)cd;
    *s = (float)sd;
}

/* rope_kv_write's cache: kc, vc [B, Hkv, Tmax, D], dst[N] (b Tmax + t); unused by plain RoPE. */
typedef struct {
    bf16 *kc, *vc;
    const int32_t *dst;
    int Tmax;
} rope_cache;

#define HEADS_AT_ONCE 4 /* heads whose loads a thread has in flight together */
#define ROPE_THREADS 256

/* One thread per (token n, W consecutive pairs i0 .. i0+W-1 of a head): it computes the W angles of
 * its pairs once, in registers (no shared memory, no barrier), and rotates those pairs in every q
 * and k head of the token, HEADS_AT_ONCE heads at a time with all their loads issued before any
 * rotation (the first group's loads are in flight while the angles are computed). Threads of a
 * token are consecutive (P = D/2/W of them), so a warp's accesses to one head's half are contiguous.
 * Rotated head h (h < Hq + Hkv) is member j = h % (G + 1) of KV group g = h / (G + 1): j < G its
 * q heads, j == G its k head. sign = +1 forward, -1 backward. W is 8 (16-byte accesses,
 * D/2 % 8 == 0, qkv 16-byte aligned) or 1. The element math (cos, sign * sin, the two products and
 * their difference or sum in fp32, one rounding) is the same for both widths. KV (rope_kv_write):
 * the thread also stores its rotated pairs of each k head into kc and copies the same elements of
 * the group's v head into vc, at the token's cache slot (kv_write's rule), so the cache holds the
 * bits qkv holds. */
template <int W, bool KV>
static __global__ void __launch_bounds__(ROPE_THREADS, 2)
    rope_kernel(bf16 *qkv, const int32_t *pos, rope_freqs freqs, float sign, int N, int Hq,
                int Hkv, int D, rope_cache cache) {
    int half = D / 2, P = half / W;
    long t = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long)N * P) return;
    int n = (int)(t / P), i0 = (int)(t % P) * W;
    int G = Hq / Hkv, heads = Hq + Hkv;
    bf16 *row = qkv + (size_t)n * (Hq + 2 * Hkv) * D + i0;
    /* KV: this token's cache slot, kc/vc[b, g, t, i0..] with (b, t) from dst[n] (kv_write's rule) */
    size_t slot = 0;
    if (KV) {
        int seq = cache.dst[n] / cache.Tmax, at = cache.dst[n] % cache.Tmax;
        slot = ((size_t)seq * Hkv * cache.Tmax + at) * D + i0;
    }
    float cs[W], sn[W];
    for (int h0 = 0; h0 < heads; h0 += HEADS_AT_ONCE) {
        gt_raw_bf16<W> ra[HEADS_AT_ONCE], rb[HEADS_AT_ONCE];
#pragma unroll
        for (int u = 0; u < HEADS_AT_ONCE; u++) {
            int h = h0 + u;
            if (h >= heads) break;
            const bf16 *x1 = row + (size_t)((h / (G + 1)) * (G + 2) + h % (G + 1)) * D;
            ra[u] = gt_raw_load<W>(x1);
            rb[u] = gt_raw_load<W>(x1 + half);
        }
        if (h0 == 0) {
            int p = pos[n];
#pragma unroll
            for (int k = 0; k < W; k++) {
                rope_angle(p, freqs.inv_freq[i0 + k], &cs[k], &sn[k]);
                sn[k] *= sign;
            }
        }
#pragma unroll
        for (int u = 0; u < HEADS_AT_ONCE; u++) {
            int h = h0 + u;
            if (h >= heads) break;
            bf16 *x1 = row + (size_t)((h / (G + 1)) * (G + 2) + h % (G + 1)) * D;
            float a[W], b[W], y1[W], y2[W];
            gt_raw_unpack<W>(ra[u], a);
            gt_raw_unpack<W>(rb[u], b);
#pragma unroll
            for (int k = 0; k < W; k++) {
                y1[k] = a[k] * cs[k] - b[k] * sn[k];
                y2[k] = b[k] * cs[k] + a[k] * sn[k];
            }
            gt_store_w<W>(x1, y1);
            gt_store_w<W>(x1 + half, y2);
            if (KV && h % (G + 1) == G) { /* the k head of group g: the same bits to the cache, and v_g */
                size_t at = slot + (size_t)(h / (G + 1)) * cache.Tmax * D;
                gt_store_w<W>(cache.kc + at, y1);
                gt_store_w<W>(cache.kc + at + half, y2);
                const bf16 *v = x1 + D;
                gt_raw_bf16<W> v1 = gt_raw_load<W>(v), v2 = gt_raw_load<W>(v + half);
                gt_raw_store<W>(cache.vc + at, v1);
                gt_raw_store<W>(cache.vc + at + half, v2);
            }
        }
    }
}

static void launch_rope(gt_backend *be, void *qkv, const int32_t *pos, float theta, float sign,
                        int N, int Hq, int Hkv, int D, rope_cache cache) {
    if (N <= 0 || D < 2 || Hkv <= 0) return;
    GT_ASSERT(Hq % Hkv == 0 && D % 2 == 0 && D / 2 <= MAX_HALF, "rope: Hq=%d Hkv=%d D=%d", Hq, Hkv,
              D);
    rope_freqs freqs = make_freqs(theta, D);
    /* One pair per thread while that makes fewer threads than one block per SM (decode, N = batch
     * rows: the 8-wide path would run 16 threads at batch 1, D = 256, each with 8 sincos in a row):
     * the angles spread over 8 times the threads. Same element math: bitwise the same results. */
    int kv = cache.kc != NULL;
    int vec = (D / 2) % GT_VEC == 0 && gt_aligned16(qkv) && (!kv || (gt_aligned16(cache.kc) && gt_aligned16(cache.vc))) &&
              (size_t)N * (D / 2) >= (size_t)be->num_sms * ROPE_THREADS;
    size_t work = (size_t)N * (D / 2) / (vec ? GT_VEC : 1);
    const int threads = ROPE_THREADS;
    unsigned blocks = (unsigned)((work + threads - 1) / threads);
    bf16 *x = (bf16 *)qkv;
    if (vec && kv)
        rope_kernel<GT_VEC, true><<<blocks, threads, 0, be->stream>>>(x, pos, freqs, sign, N, Hq, Hkv, D, cache);
    else if (vec)
        rope_kernel<GT_VEC, false><<<blocks, threads, 0, be->stream>>>(x, pos, freqs, sign, N, Hq, Hkv, D, cache);
    else if (kv)
        rope_kernel<1, true><<<blocks, threads, 0, be->stream>>>(x, pos, freqs, sign, N, Hq, Hkv, D, cache);
    else
        rope_kernel<1, false><<<blocks, threads, 0, be->stream>>>(x, pos, freqs, sign, N, Hq, Hkv, D, cache);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_rope_fwd(gt_backend *be, void *qkv, const int32_t *pos, float theta, int N,
                                 int Hq, int Hkv, int D) {
    GT_NVTX_PUSH("rope_fwd");
    launch_rope(be, qkv, pos, theta, 1.0f, N, Hq, Hkv, D, rope_cache{});
    GT_NVTX_POP();
}

extern "C" void gt_cuda_rope_bwd(gt_backend *be, void *dqkv, const int32_t *pos, float theta, int N,
                                 int Hq, int Hkv, int D) {
    GT_NVTX_PUSH("rope_bwd");
    launch_rope(be, dqkv, pos, theta, -1.0f, N, Hq, Hkv, D, rope_cache{});
    GT_NVTX_POP();
}

extern "C" void gt_cuda_rope_kv_write(gt_backend *be, void *qkv, void *kc, void *vc, const int32_t *pos,
                                      const int32_t *dst, float theta, int N, int Hq, int Hkv, int D, int Tmax) {
    GT_NVTX_PUSH("rope_kv_write");
    launch_rope(be, qkv, pos, theta, 1.0f, N, Hq, Hkv, D, rope_cache{(bf16 *)kc, (bf16 *)vc, dst, Tmax});
    GT_NVTX_POP();
}
