/* Facts about the backend's device for reports: its name and the memory in use on it. */
#include <stdio.h>

#include "cuda_common.cuh"

extern "C" void gt_cuda_device_name(gt_backend *be, char *buf, size_t len) {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, be->device));
    snprintf(buf, len, "%s", prop.name);
}

/* Device memory in use by every process on the device (total - free), in bytes: an upper bound
 * of this process's use that includes the CUDA context and library workspaces. */
extern "C" size_t gt_cuda_mem_in_use(gt_backend *be) {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaSetDevice(be->device));
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return total_b - free_b;
}
