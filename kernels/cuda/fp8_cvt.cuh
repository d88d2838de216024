/* Device FP8 conversion for the cast kernels (fp8_cast.cu; a header so that future fused
 * norm/activation casts use the same code): float -> E4M3 / E5M2 with round-to-nearest-even and
 * saturation to the largest finite value, through the hardware cvt.rn.satfinite.{e4m3,e5m2}x2.f32
 * (sm_89+), which is what __nv_cvt_float2_to_fp8x2(..., __NV_SATFINITE, ...) emits and what
 * TransformerEngine uses.
 * kernels/fp8.c is the host twin; tests/gpu/test_gpu_fp8.c checks they agree bit for bit.
 * Also the pre-scale amax reduction (block max, then one atomicMax on the float's bits). */
#ifndef GT_FP8_CVT_CUH
#define GT_FP8_CVT_CUH

#include <cuda_fp8.h>

#include "cuda_vec.cuh"

/* Four floats -> four FP8 codes packed little-endian (a in the lowest byte). */
template <__nv_fp8_interpretation_t F>
static __device__ __forceinline__ uint32_t gt_fp8x4(float a, float b, float c, float d) {
    uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, F);
    uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, F);
    return lo | (hi << 16);
}

/* 16 floats, already scaled, -> 16 FP8 codes in one 16-byte word. */
template <__nv_fp8_interpretation_t F>
static __device__ __forceinline__ uint4 gt_fp8x16(const float v[16]) {
    uint4 q;
    q.x = gt_fp8x4<F>(v[0], v[1], v[2], v[3]);
    q.y = gt_fp8x4<F>(v[4], v[5], v[6], v[7]);
    q.z = gt_fp8x4<F>(v[8], v[9], v[10], v[11]);
    q.w = gt_fp8x4<F>(v[12], v[13], v[14], v[15]);
    return q;
}

template <__nv_fp8_interpretation_t F> static __device__ __forceinline__ uint8_t gt_fp8x1(float v) {
    return (uint8_t)__nv_cvt_float_to_fp8(v, __NV_SATFINITE, F);
}

/* max |x| as the host does it: fmaxf ignores NaN (fmaxf(m, NaN) = m), so NaN inputs never enter
 * an amax, exactly as kernels/cpu/fp8.c's fmaxf(m, fabsf(v)). */
static __device__ __forceinline__ float gt_absmax(float m, float v) { return fmaxf(m, fabsf(v)); }

/* The cast of 16 values of a tiled kernel: m = max(m, |v|) (pre-scale), then fp8(v * s) as one
 * 16-byte word. v is overwritten (scaled). */
template <__nv_fp8_interpretation_t F>
static __device__ __forceinline__ uint4 gt_fp8_cast16(float v[16], float s, float &m) {
#pragma unroll
    for (int j = 0; j < 16; j++) {
        m = gt_absmax(m, v[j]);
        v[j] *= s;
    }
    return gt_fp8x16<F>(v);
}

/* amax[0] = max(amax[0], m over the block). Every thread must call (it has barriers).
 * The float's bits compared as signed ints order non-negative floats correctly (and +inf above all
 * finite values), and m >= 0 here, so one integer atomicMax per block does it; a stored -0.0 (a
 * negative int) loses to any m > 0 as it should. m == 0 changes nothing and is skipped. */
static __device__ __forceinline__ void gt_block_amax(float m, float *amax) {
    __shared__ float warp_max[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    m = gt_warp_max(m);
    __syncthreads(); /* a previous use of warp_max in this kernel is over */
    if (lane == 0) warp_max[warp] = m;
    __syncthreads();
    if (warp == 0) {
        m = gt_warp_max(lane < nwarps ? warp_max[lane] : 0.0f);
        if (lane == 0 && amax && m > 0.0f) atomicMax((int *)amax, __float_as_int(m));
    }
}

#endif
