/* RMSNorm with zero-centered gamma (HF GemmaRMSNorm, computed in float32 there; in `real` here):
 *   rstd = 1 / sqrt(mean(x^2) + eps),  xhat = x * rstd,  y = xhat * (1 + w). */
#include "cpu_kernels.h"

#include <stdlib.h>

/* out[N, C], rstd[N], x[N, C], w[C]. The product order (x * rstd) * (1 + w) is HF's. */
void CPU_FN(cpu_rmsnorm_fwd)(gt_backend *be, void *out, void *rstd, const void *x, const void *w,
                             float eps, int N, int C) {
    real *y = out, *rs = rstd;
    const real *xs = x, *ws = w;
    for (int n = 0; n < N; n++) {
        const real *xr = xs + (size_t)n * C;
        real *yr = y + (size_t)n * C;
        acc sq = 0;
        for (int c = 0; c < C; c++) sq += (acc)xr[c] * xr[c];
        real ms = (real)(sq / C);
        real r = (real)1 / r_sqrt(ms + (real)eps);
        rs[n] = r;
        for (int c = 0; c < C; c++) yr[c] = (xr[c] * r) * ((real)1 + ws[c]);
    }
}

/* add_rmsnorm_fwd (ops.h): row by row, cpu_add into the row of res, then cpu_rmsnorm_fwd of that
 * stored row: the composition add + rmsnorm_fwd, so bit-identical to it by construction. Each row
 * of a and b is read before its row of res is written, so res may alias a or b. */
void CPU_FN(cpu_add_rmsnorm_fwd)(gt_backend *be, void *res, void *out, void *rstd, const void *a,
                                 const void *b, const void *w, float eps, int N, int C) {
    for (int n = 0; n < N; n++) {
        size_t off = (size_t)n * C;
        real *row = (real *)res + off;
        CPU_FN(cpu_add)(be, row, (const real *)a + off, (const real *)b + off, (size_t)C);
        CPU_FN(cpu_rmsnorm_fwd)(be, (real *)out + off, (real *)rstd + n, row, w, eps, 1, C);
    }
}

/* rmsnorm_fwd_fp8 (ops.h): row by row, the row of y is computed by cpu_rmsnorm_fwd above into y
 * or, when that is NULL, a one-row scratch, and cast by fp8_cast's own row code: the composition
 * rmsnorm_fwd + fp8_cast, so bit-identical to it by construction (as geglu.c's fused ops). The
 * transposed codes of row n go to column n of y8t [C, N]. */
void CPU_FN(cpu_rmsnorm_fwd_fp8)(gt_backend *be, void *y, void *y8, void *y8t, void *rstd,
                                 const void *x, const void *w, float eps, int N, int C, gt_dtype fmt,
                                 const float *scale, float *amax) {
    if (N <= 0 || C <= 0) return;
    real *scratch = y ? NULL : gt_malloc((size_t)C * sizeof(real));
    uint8_t *o = y8, *ot = y8t;
    float m = *amax;
    for (int n = 0; n < N; n++) {
        real *row = y ? (real *)y + (size_t)n * C : scratch;
        CPU_FN(cpu_rmsnorm_fwd)(be, row, (real *)rstd + n, (const real *)x + (size_t)n * C, w,
                                eps, 1, C);
        CPU_FN(cpu_fp8_cast_row)(o ? o + (size_t)n * C : NULL, ot ? ot + n : NULL, (size_t)N, row,
                                 C, fmt, scale, &m);
    }
    *amax = m;
    free(scratch);
}

/* add_rmsnorm_fwd_fp8 (ops.h): the composition itself, cpu_add over all rows then
 * cpu_rmsnorm_fwd_fp8 of res (its transposed output needs every row), so bit-identical to it. */
void CPU_FN(cpu_add_rmsnorm_fwd_fp8)(gt_backend *be, void *res, void *y, void *y8, void *y8t,
                                     void *rstd, const void *a, const void *b, const void *w,
                                     float eps, int N, int C, gt_dtype fmt, const float *scale,
                                     float *amax) {
    if (N <= 0 || C <= 0) return;
    CPU_FN(cpu_add)(be, res, a, b, (size_t)N * C);
    CPU_FN(cpu_rmsnorm_fwd_fp8)(be, y, y8, y8t, rstd, res, w, eps, N, C, fmt, scale, amax);
}

/* With g = dout * (1 + w) and xhat = x * rstd (rstd saved by the forward):
 *   dx[N, C] += rstd * (g - xhat * mean_c(g * xhat))
 *   dw[C]    += sum over rows of dout * xhat (summed in double, added once). */
void CPU_FN(cpu_rmsnorm_bwd)(gt_backend *be, void *dx, void *dw, const void *dout, const void *x,
                             const void *w, const void *rstd, int N, int C) {
    real *dxs = dx, *dws = dw;
    const real *dys = dout, *xs = x, *ws = w, *rs = rstd;
    acc *dw_sum = gt_calloc((size_t)C, sizeof(acc));
    for (int n = 0; n < N; n++) {
        const real *xr = xs + (size_t)n * C, *dyr = dys + (size_t)n * C;
        real *dxr = dxs + (size_t)n * C;
        const real r = rs[n];
        acc dot = 0;
        for (int c = 0; c < C; c++) {
            real xhat = xr[c] * r;
            dot += (acc)(dyr[c] * ((real)1 + ws[c])) * xhat;
            dw_sum[c] += (acc)dyr[c] * xhat;
        }
        real mean = (real)(dot / C);
        for (int c = 0; c < C; c++) {
            real g = dyr[c] * ((real)1 + ws[c]);
            dxr[c] += r * (g - (xr[c] * r) * mean);
        }
    }
    for (int c = 0; c < C; c++) dws[c] = cpu_grad_store(be, (real)((acc)dws[c] + dw_sum[c]));
    free(dw_sum);
}
