/* The CUDA backend's stream, for C callers that must order their own device work with the ops:
 * NCCL collectives (comm/), CUDA-event timing (tests/gpu). Every op of the backend runs on it. */
#ifndef GT_CUDA_STREAM_H
#define GT_CUDA_STREAM_H

#include <cuda_runtime.h>

#include "../ops.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaStream_t gt_cuda_stream(gt_backend *be);

#ifdef __cplusplus
}
#endif

#endif
