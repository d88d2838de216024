/* Facts about the backend's device for reports: its name, the memory in use on it, its peak rates. */
#include <stdio.h>
#include <string.h>

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

/* Free device memory now, in bytes (the memory plan's budget: after the context and the cuBLASLt
 * workspace, before the model). */
extern "C" size_t gt_cuda_mem_free(gt_backend *be) {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaSetDevice(be->device));
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return free_b;
}

/* What the backend and its libraries still allocate once a step runs, beyond the op buffers: cuDNN
 * attention's workspace (sized by its plans on first use; tens to hundreds of MiB at Gemma's
 * shapes), NCCL's communicator buffers (made after the plan), and the allocator's rounding. An
 * estimate, not a measurement: 1 GiB. */
extern "C" size_t gt_cuda_mem_reserve(gt_backend *be) {
    (void)be;
    return (size_t)1 << 30;
}

/* MFU is taken against the H100/H200 SXM dense BF16 peak on every GPU (the README's definition);
 * the memory bandwidth, for the profile's rooflines, is the H200's HBM3e or else the H100's HBM3. */
extern "C" gt_peak gt_cuda_peak(gt_backend *be) {
    char name[256];
    gt_cuda_device_name(be, name, sizeof name);
    return gt_peak{GT_H100_BF16_FLOPS, strstr(name, "H200") ? 4.8e12 : 3.35e12};
}
