/* Attention: the reference path (one warp per row, fp32 math) and the dsum pre-kernel of both
 * backward paths. See attention.cuh. */
#include "attention.cuh"

/* ======================================================================================
 * Reference path: one warp per row, lane l holds elements l, l + 32, ... of a head (D <= 256).
 * ====================================================================================== */


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

