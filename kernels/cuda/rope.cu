/* Rotary position embedding, in place on the q and k heads of the fused qkv rows.
 *
 * qkv[N, (Hq + 2*Hkv) * D] is grouped by KV group g: [q heads (G of them), k_g, v_g], G = Hq / Hkv.
 * Element d < D/2 pairs with d + D/2 (non-interleaved halves):
 *   forward   y1 = x1 cos - x2 sin,    y2 = x2 cos + x1 sin
 *   backward  dx1 = dy1 cos + dy2 sin, dx2 = dy2 cos - dy1 sin   (the inverse rotation)
 * v heads are left alone.
 *
 * Angles exactly as HF's GemmaRotaryEmbedding, all in fp32: inv_freq[i] = 1 / theta^(float(2i)/D),
 * angle = float(pos) * inv_freq[i]. This file is built with --use_fast_math, which would turn
 * cosf/sinf/powf and '/' into approximate intrinsics, so the fp32 steps use the explicitly rounded
 * intrinsics (__fdiv_rn, __fmul_rn) and pow/cos/sin are evaluated in double and rounded to fp32:
 * the correctly rounded fp32 values, as accurate as torch's precise float functions. HF also rounds
 * cos/sin and each product to bf16 in a bf16 model; as the op contract asks, we keep fp32 and round
 * once per output element. */
#include "cuda_ops.cuh"
#include "cuda_vec.cuh"

/* cos and sin of the angle of frequency i at position p, as fp32. */
static __device__ __forceinline__ void rope_angle(int p, int i, int D, float theta, float *c,
                                                  float *s) {
    float expo = __fdiv_rn((float)(2 * i), (float)D);
    float base_pow = (float)pow((double)theta, (double)expo);
    float inv_freq = __fdiv_rn(1.0f, base_pow);
    double angle = (double)__fmul_rn((float)p, inv_freq);
    double sd, cd;
    sincos(angle, &sd, &cd);
    *c = (float)cd;
    *s = (float)sd;
}

/* One thread per (token n, W consecutive frequencies); it rotates those pairs in every q and k
 * head of the row, so each angle is computed once per token. sign = +1 forward, -1 backward. W is
 * 8 (16-byte accesses, D/2 % 8 == 0) or 1. */
template <int W>
static __global__ void rope_kernel(bf16 *qkv, const int32_t *pos, float theta, float sign, int N,
                                   int Hq, int Hkv, int D) {
    int half = D / 2, per_row = half / W;
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)N * per_row) return;
    int n = (int)(t / per_row), i0 = (int)(t % per_row) * W;
    float cs[W], sn[W];
    int p = pos[n];
#pragma unroll
    for (int j = 0; j < W; j++) {
        rope_angle(p, i0 + j, D, theta, &cs[j], &sn[j]);
        sn[j] *= sign;
    }
    int G = Hq / Hkv;
    bf16 *row = qkv + (size_t)n * (Hq + 2 * Hkv) * D;
    for (int g = 0; g < Hkv; g++) {
        for (int j = 0; j <= G; j++) { /* j < G: the q heads of group g; j == G: its k head */
            bf16 *x1 = row + (size_t)(g * (G + 2) + j) * D + i0, *x2 = x1 + half;
            float a[W], b[W];
            if (W == GT_VEC) {
                gt_load8(x1, a);
                gt_load8(x2, b);
            } else {
                a[0] = __bfloat162float(x1[0]);
                b[0] = __bfloat162float(x2[0]);
            }
            float y1[W], y2[W];
#pragma unroll
            for (int k = 0; k < W; k++) {
                y1[k] = a[k] * cs[k] - b[k] * sn[k];
                y2[k] = b[k] * cs[k] + a[k] * sn[k];
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
}

static void launch_rope(gt_backend *be, void *qkv, const int32_t *pos, float theta, float sign,
                        int N, int Hq, int Hkv, int D) {
    if (N <= 0 || D < 2 || Hkv <= 0) return;
    GT_ASSERT(Hq % Hkv == 0 && D % 2 == 0, "rope: Hq=%d Hkv=%d D=%d", Hq, Hkv, D);
    int vec = (D / 2) % GT_VEC == 0 && gt_aligned16(qkv);
    size_t work = (size_t)N * (D / 2) / (vec ? GT_VEC : 1);
    const int threads = 128;
    unsigned blocks = (unsigned)((work + threads - 1) / threads);
    if (vec)
        rope_kernel<GT_VEC>
            <<<blocks, threads, 0, be->stream>>>((bf16 *)qkv, pos, theta, sign, N, Hq, Hkv, D);
    else
        rope_kernel<1>
            <<<blocks, threads, 0, be->stream>>>((bf16 *)qkv, pos, theta, sign, N, Hq, Hkv, D);
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
