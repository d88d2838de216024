/* What the compute backends were compiled against, for `gemmatron --version`. One definition is
 * linked in, chosen by the build: kernels/cuda/build_info.cu (the CUDA backend: the versions of the
 * CUDA runtime, cuBLASLt, NCCL and cuDNN headers it was compiled with) or kernels/build_info_cpu.c
 * (no CUDA backend: "CPU only"). Callers therefore need no #ifdef. */
#ifndef GT_KERNELS_BUILD_INFO_H
#define GT_KERNELS_BUILD_INFO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One line into buf, e.g. "CUDA runtime 12.4, cuBLASLt 12.4.5, NCCL 2.21.5, no cuDNN; CUDA
 * architectures 90a" or "CPU only (built without the CUDA backend)". */
void gt_kernels_build_info(char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
