/* Random initialization on the CPU (ops.h init_normal). */
#include "../normal_hash.h"
#include "cpu_kernels.h"

void CPU_FN(cpu_init_normal)(gt_backend *be, void *dst, int64_t rows, int64_t cols, int64_t full_cols,
                             int64_t row0, int64_t col0, uint64_t key, float std, int64_t zero_row) {
    (void)be;
    real *d = dst;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            d[r * cols + c] = row0 + r == zero_row ? 0
                                                   : (real)gt_normal_at(key, (uint64_t)((row0 + r) * full_cols + col0 + c), std);
}
