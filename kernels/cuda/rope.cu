/* Rotary position embedding, in place on the q and k heads of the fused qkv rows.
 *
 * qkv[N, (Hq + 2*Hkv) * D] is grouped by KV group g: [q heads (G of them), k_g, v_g], G = Hq / Hkv.
 * Element d < D/2 pairs with d + D/2 (non-interleaved halves):
 *   forward   y1 = x1 cos - x2 sin,    y2 = x2 cos + x1 sin
 *   backward  dx1 = dy1 cos + dy2 sin, dx2 = dy2 cos - dy1 sin   (the inverse rotation)
 * v heads are left alone.
 *
 * Angles exactly as HF's GemmaRotaryEmbedding, all in fp32: inv_freq[i] = 1 / theta^(float(2i)/D),
 * angle = float(pos) * inv_freq[i]. inv_freq is computed on the host (IEEE fp32, pow in double
 * rounded to fp32). The device code is built with --use_fast_math, which would turn cosf/sinf and
 * fp32 products into approximate or contracted forms, so the angle uses the explicitly rounded
 * __fmul_rn and cos/sin are evaluated in double and rounded to fp32: the correctly rounded fp32
 * values, as accurate as torch's precise float functions. HF also rounds
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

/* One block per token n: its threads first compute the D/2 (cos, sin) pairs of the token's position
 * into shared memory (each angle once), then rotate W consecutive pairs of one q or k head each.
 * Rotated head h (h < Hq + Hkv) is member j = h % (G + 1) of KV group g = h / (G + 1): j < G its
 * q heads, j == G its k head. sign = +1 forward, -1 backward. W is 8 (16-byte accesses,
 * D/2 % 8 == 0) or 1. */
template <int W>
static __global__ void rope_kernel(bf16 *qkv, const int32_t *pos, rope_freqs freqs, float sign,
                                   int Hq, int Hkv, int D) {
    __shared__ float cs[MAX_HALF], sn[MAX_HALF];
    int n = blockIdx.x, half = D / 2, p = pos[n];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        rope_angle(p, freqs.inv_freq[i], &cs[i], &sn[i]);
        sn[i] *= sign;
    }
    __syncthreads();
    int G = Hq / Hkv, per_head = half / W, items = (Hq + Hkv) * per_head;
    bf16 *row = qkv + (size_t)n * (Hq + 2 * Hkv) * D;
    for (int item = threadIdx.x; item < items; item += blockDim.x) {
        int h = item / per_head, i0 = (item % per_head) * W;
        int g = h / (G + 1), j = h % (G + 1);
        bf16 *x1 = row + (size_t)(g * (G + 2) + j) * D + i0, *x2 = x1 + half;
        float a[W], b[W], y1[W], y2[W];
        if (W == GT_VEC) {
            gt_load8(x1, a);
            gt_load8(x2, b);
        } else {
            a[0] = __bfloat162float(x1[0]);
            b[0] = __bfloat162float(x2[0]);
        }
#pragma unroll
        for (int k = 0; k < W; k++) {
            y1[k] = a[k] * cs[i0 + k] - b[k] * sn[i0 + k];
            y2[k] = b[k] * cs[i0 + k] + a[k] * sn[i0 + k];
        }
        if (W == GT_VEC) {
            gt_store8(x1, y1);
            gt_store8(x2, y2);
        } else {
            x1[0] = __float2bfloat16_rn(y1[0]);
            x2[0] = __float2bfloat16_rn(y2[0]);
        }
    }
}

static void launch_rope(gt_backend *be, void *qkv, const int32_t *pos, float theta, float sign,
                        int N, int Hq, int Hkv, int D) {
    if (N <= 0 || D < 2 || Hkv <= 0) return;
    GT_ASSERT(Hq % Hkv == 0 && D % 2 == 0 && D / 2 <= MAX_HALF, "rope: Hq=%d Hkv=%d D=%d", Hq, Hkv,
              D);
    rope_freqs freqs = make_freqs(theta, D);
    int vec = (D / 2) % GT_VEC == 0 && gt_aligned16(qkv);
    int items = (Hq + Hkv) * (D / 2) / (vec ? GT_VEC : 1);
    int threads = (items + 31) / 32 * 32;
    threads = threads > 256 ? 256 : threads;
    if (vec)
        rope_kernel<GT_VEC>
            <<<N, threads, 0, be->stream>>>((bf16 *)qkv, pos, freqs, sign, Hq, Hkv, D);
    else
        rope_kernel<1><<<N, threads, 0, be->stream>>>((bf16 *)qkv, pos, freqs, sign, Hq, Hkv, D);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gt_cuda_rope_fwd(gt_backend *be, void *qkv, const int32_t *pos, float theta, int N,
                                 int Hq, int Hkv, int D) {
    GT_NVTX_PUSH("rope_fwd");
    launch_rope(be, qkv, pos, theta, 1.0f, N, Hq, Hkv, D);
    GT_NVTX_POP();
}

extern "C" void gt_cuda_rope_bwd(gt_backend *be, void *dqkv, const int32_t *pos, float theta, int N,
                                 int Hq, int Hkv, int D) {
    GT_NVTX_PUSH("rope_bwd");
    launch_rope(be, dqkv, pos, theta, -1.0f, N, Hq, Hkv, D);
    GT_NVTX_POP();
}
