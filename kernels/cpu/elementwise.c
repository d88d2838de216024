/* Elementwise ops on ACT buffers of n `real` elements. */
#include "cpu_kernels.h"

/* out[i] = a[i] + b[i]; out may alias a or b (each element is read before it is written). */
void CPU_FN(cpu_add)(gt_backend *be, void *out, const void *a, const void *b, size_t n) {
    real *o = out;
    const real *x = a, *y = b;
    for (size_t i = 0; i < n; i++) o[i] = x[i] + y[i];
}

/* dst[i] += src[i] */
void CPU_FN(cpu_accumulate)(gt_backend *be, void *dst, const void *src, size_t n) {
    real *d = dst;
    const real *s = src;
    for (size_t i = 0; i < n; i++) d[i] += s[i];
}
