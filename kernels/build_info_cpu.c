/* gt_kernels_build_info of a build without the CUDA backend (CMake links kernels/cuda/build_info.cu
 * instead when it builds that backend). */
#include "build_info.h"

#include <stdio.h>

void gt_kernels_build_info(char *buf, size_t len) { snprintf(buf, len, "CPU only (built without the CUDA backend)"); }
