/* Memory ops of the CPU backends: "device" memory is host memory. Every gt_kind (ACT, GRAD, STAT)
 * is stored as `real`, so upload/download only convert float <-> real (a plain copy in the float
 * build; double -> float rounds to nearest even, the C default). */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

void *CPU_FN(cpu_alloc)(gt_backend *be, size_t bytes) { return gt_calloc(1, bytes); }

void CPU_FN(cpu_release)(gt_backend *be, void *p) { free(p); }

void CPU_FN(cpu_zero)(gt_backend *be, void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}

/* memmove: the CPU backend tolerates overlapping copies, which a device copy might not. */
void CPU_FN(cpu_copy)(gt_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}

void CPU_FN(cpu_upload_raw)(gt_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

void CPU_FN(cpu_download_raw)(gt_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

void CPU_FN(cpu_upload)(gt_backend *be, gt_kind kind, void *dst, const float *src, size_t n) {
    GT_ASSERT((unsigned)kind <= GT_STAT, "upload: bad kind %d", (int)kind);
    real *d = dst;
    for (size_t i = 0; i < n; i++) d[i] = (real)src[i];
}

void CPU_FN(cpu_download)(gt_backend *be, gt_kind kind, float *dst, const void *src, size_t n) {
    GT_ASSERT((unsigned)kind <= GT_STAT, "download: bad kind %d", (int)kind);
    const real *s = src;
    for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
}

/* Every CPU op has finished when it returns. */
void CPU_FN(cpu_sync)(gt_backend *be) {}
