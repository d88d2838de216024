/* Device helpers shared by the fused kernels: 16-byte vector loads/stores of bf16 and fp32, warp
 * and block reductions, launch-size helpers. Header-only (static inline), no state. */
#ifndef GT_CUDA_VEC_CUH
#define GT_CUDA_VEC_CUH

#include <stdint.h>

#include "cuda_common.cuh"

typedef __nv_bfloat16 bf16;

/* bf16 elements in one 16-byte access. */
#define GT_VEC 8

static inline int gt_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* Blocks for a grid-stride loop over `work` items at `threads` per block: enough to fill the chip
 * several times over, never more than the work needs. */
static inline unsigned gt_grid_stride_blocks(const gt_backend *be, size_t work, int threads) {
    size_t need = (work + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)be->num_sms * 16;
    if (need > cap) need = cap;
    return need ? (unsigned)need : 1u;
}

/* W (GT_VEC or 1) consecutive bf16 as raw bits, so that a thread can hold several loads in flight in
 * few registers (4 per 16-byte vector, or one element), unpacked to floats when they are used. */
template <int W> struct gt_raw_bf16 {
    uint4 v;
};
template <> struct gt_raw_bf16<1> {
    unsigned short v;
};

template <int W> static __device__ __forceinline__ gt_raw_bf16<W> gt_raw_load(const bf16 *p) {
    gt_raw_bf16<W> r;
    if constexpr (W == GT_VEC)
        r.v = *(const uint4 *)p;
    else
        r.v = *(const unsigned short *)p;
    return r;
}

template <int W> static __device__ __forceinline__ gt_raw_bf16<W> gt_raw_zero() {
    gt_raw_bf16<W> r;
    if constexpr (W == GT_VEC)
        r.v = make_uint4(0u, 0u, 0u, 0u);
    else
        r.v = 0;
    return r;
}

/* The W floats of r (__bfloat162float's values). */
template <int W> static __device__ __forceinline__ void gt_raw_unpack(const gt_raw_bf16<W> &r, float *f) {
    if constexpr (W == GT_VEC) {
        union {
            uint4 u;
            __nv_bfloat162 h[4];
        } v;
        v.u = r.v;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 t = __bfloat1622float2(v.h[i]);
            f[2 * i] = t.x;
            f[2 * i + 1] = t.y;
        }
    } else {
        f[0] = __bfloat162float(__ushort_as_bfloat16(r.v));
    }
}

/* 8 consecutive bf16 at p (16-byte aligned) as floats. */
static __device__ __forceinline__ void gt_load8(const bf16 *p, float f[GT_VEC]) {
    gt_raw_unpack<GT_VEC>(gt_raw_load<GT_VEC>(p), f);
}

/* Rounds 8 floats to bf16 (nearest even) and stores them at p (16-byte aligned). */
static __device__ __forceinline__ void gt_store8(bf16 *p, const float f[GT_VEC]) {
    union {
        uint4 u;
        __nv_bfloat162 h[4];
    } v;
#pragma unroll
    for (int i = 0; i < 4; i++) v.h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    *(uint4 *)p = v.u;
}

/* W (GT_VEC or 1) floats rounded to bf16 (nearest even) at p (16-byte aligned for GT_VEC). */
template <int W> static __device__ __forceinline__ void gt_store_w(bf16 *p, const float *f) {
    if constexpr (W == GT_VEC)
        gt_store8(p, f);
    else
        p[0] = __float2bfloat16_rn(f[0]);
}

/* W bf16 stored as gt_raw_load read them. */
template <int W> static __device__ __forceinline__ void gt_raw_store(bf16 *p, const gt_raw_bf16<W> &r) {
    if constexpr (W == GT_VEC)
        *(uint4 *)p = r.v;
    else
        *(unsigned short *)p = r.v;
}

/* A parameter gradient element (fp32, or bf16 with set_grad_bf16) read as fp32 and written from
 * fp32 (bf16: rounded to nearest even), for kernels templated on the gradient type. */
static __device__ __forceinline__ float gt_grad_get(const float *p) { return *p; }
static __device__ __forceinline__ float gt_grad_get(const bf16 *p) { return __bfloat162float(*p); }
static __device__ __forceinline__ void gt_grad_put(float *p, float v) { *p = v; }
static __device__ __forceinline__ void gt_grad_put(bf16 *p, float v) { *p = __float2bfloat16_rn(v); }

static __device__ __forceinline__ float gt_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ float gt_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread, in a
 * fixed order (deterministic). scratch: 32 floats of shared memory; all threads must call. */
static __device__ __forceinline__ float gt_block_sum(float v, float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = gt_warp_sum(v);
    __syncthreads(); /* the previous use of scratch is over */
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : 0.0f;
    return gt_warp_sum(v);
}

#endif
