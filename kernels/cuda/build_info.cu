/* gt_kernels_build_info of the CUDA backend: the versions of the headers it was compiled with
 * (CUDART_VERSION, CUBLAS_VER_*, NCCL_VERSION_CODE's parts, CUDNN_*), not those of the libraries
 * found at run time, and the GPU architectures compiled for (GT_CUDA_ARCHS, from CMake). */
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stdio.h>

#ifdef GT_HAVE_NCCL
#include <nccl.h>
#endif
/* cuDNN is optional: the build that links it defines GT_HAVE_CUDNN for this file (the CUDA backend's
 * sources) and its version is shown; otherwise "no cuDNN". */
#ifdef GT_HAVE_CUDNN
#include <cudnn_version.h>
#endif

#include "../build_info.h"

#ifndef GT_CUDA_ARCHS
#define GT_CUDA_ARCHS "unknown"
#endif

extern "C" void gt_kernels_build_info(char *buf, size_t len) {
    char nccl[32] = "no NCCL", cudnn[32] = "no cuDNN";
#ifdef GT_HAVE_NCCL
    snprintf(nccl, sizeof nccl, "NCCL %d.%d.%d", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
#endif
#ifdef GT_HAVE_CUDNN
    snprintf(cudnn, sizeof cudnn, "cuDNN %d.%d.%d", CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
#endif
    snprintf(buf, len, "CUDA runtime %d.%d, cuBLASLt %d.%d.%d, %s, %s; CUDA architectures %s", CUDART_VERSION / 1000,
             CUDART_VERSION % 1000 / 10, CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH, nccl, cudnn,
             GT_CUDA_ARCHS);
}
