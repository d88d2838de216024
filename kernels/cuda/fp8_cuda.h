/* FP8 entry points of the CUDA backend beyond the op table (kernels/ops.h holds the contracts of
 * fp8_cast, matmul_fp8 and fp8_update), callable from C: the test hook of the device conversion,
 * and the release of the FP8 GEMM plan cache. */
#ifndef GT_FP8_CUDA_H
#define GT_FP8_CUDA_H

#include <stddef.h>

#include "../ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[n] = fp8(in[n]) (fmt GT_E4M3 or GT_E5M2), no scale, no amax: the exact device conversion the
 * cast kernels use (fp8_cvt.cuh), so tests can sweep float inputs that a bf16 input times one
 * scale cannot reach. in and out are device pointers. */
void gt_cuda_fp8_convert(gt_backend *be, void *out, const float *in, size_t n, gt_dtype fmt);

/* Destroys the FP8 GEMM descriptors and heuristics cached in be (fp8_gemm.cu creates them on the
 * first matmul_fp8); gt_cuda_backend_destroy must call it before destroying the cuBLASLt handle.
 * Safe when no FP8 GEMM ran. */
void gt_cuda_fp8_release(gt_backend *be);

#ifdef __cplusplus
}
#endif

#endif
