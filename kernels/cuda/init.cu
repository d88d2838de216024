/* Random initialization on the GPU (ops.h init_normal): one thread per element, the same
 * counter-based generator as the CPU (kernels/normal_hash.h), rounded to bf16. */
#include "../normal_hash.h"
#include "cuda_ops.cuh"

__global__ void init_normal_kernel(__nv_bfloat16 *dst, int64_t rows, int64_t cols, int64_t full_cols,
                                   int64_t row0, int64_t col0, uint64_t key, float std, int64_t zero_row) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols) return;
    int64_t r = i / cols, c = i % cols;
    float v = row0 + r == zero_row ? 0.0f : gt_normal_at(key, (uint64_t)((row0 + r) * full_cols + col0 + c), std);
    dst[i] = __float2bfloat16_rn(v);
}

extern "C" void gt_cuda_init_normal(gt_backend *be, void *dst, int64_t rows, int64_t cols, int64_t full_cols,
                                    int64_t row0, int64_t col0, uint64_t key, float std, int64_t zero_row) {
    int64_t n = rows * cols;
    if (n == 0) return;
    init_normal_kernel<<<(unsigned)((n + 255) / 256), 256, 0, be->stream>>>((__nv_bfloat16 *)dst, rows, cols, full_cols,
                                                                          row0, col0, key, std, zero_row);
    CUDA_CHECK_LAUNCH();
}
