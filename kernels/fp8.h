/* FP8 numbers on the host: E4M3 (the "fn" variant: no infinities, max 448, NaN = S.1111.111) for
 * activations and weights, E5M2 (IEEE-like: infinities, max 57344) for gradients. Conversion from
 * float rounds to nearest even and saturates to the largest finite value (CUDA's
 * __nv_cvt_float_to_fp8 with __NV_SATFINITE, which TransformerEngine's casts use); NaN stays NaN.
 * The CPU backend emulates FP8 GEMMs with these, and the GPU kernels are tested against them. */
#ifndef GT_FP8_H
#define GT_FP8_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GT_E4M3_MAX 448.0f
#define GT_E5M2_MAX 57344.0f

uint8_t gt_f32_to_e4m3(float x);
uint8_t gt_f32_to_e5m2(float x);
float gt_e4m3_to_f32(uint8_t v);
float gt_e5m2_to_f32(uint8_t v);

#ifdef __cplusplus
}
#endif

#endif
