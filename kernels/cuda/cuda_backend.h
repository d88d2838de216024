/* The CUDA backend, callable from C. Compiled only where nvcc exists (GT_HAVE_CUDA). */
#ifndef GT_CUDA_BACKEND_H
#define GT_CUDA_BACKEND_H

#include "../ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no driver or no GPU (never dies). */
int gt_cuda_device_count(void);
/* Selects the device, creates the stream, the cuBLASLt handle and its 32 MiB workspace. */
gt_backend *gt_cuda_backend_create(int device);
void gt_cuda_backend_destroy(gt_backend *be);
const gt_ops *gt_cuda_ops(void);
/* The device's name, the device memory in use (total - free: includes the CUDA context), and its
 * peak rates (gt_ops.peak). */
void gt_cuda_device_name(gt_backend *be, char *buf, size_t len);
size_t gt_cuda_mem_in_use(gt_backend *be);
size_t gt_cuda_mem_free(gt_backend *be);
size_t gt_cuda_mem_reserve(gt_backend *be);
gt_peak gt_cuda_peak(gt_backend *be);
/* Which implementation attention_fwd/bwd run for this case: "cudnn" (cuDNN's fused attention,
 * kernels/cuda/attention_cudnn.h; its plan is built by this query) or "builtin". */
const char *gt_cuda_attention_impl(gt_backend *be, const int32_t *seg, float scale, int B, int T,
                                   int Hq, int Hkv, int D);

#ifdef __cplusplus
}
#endif

#endif
