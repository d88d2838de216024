/* Linear layer without bias, weights in HF layout W[OC, IC]:
 *   forward   y[N, OC] = x[N, IC] W^T
 *   backward  dx[N, IC] = dy W (overwritten),  dW[OC, IC] += dy^T x
 * Every inner loop runs over IC, contiguous in x, W, dx and dW. Rows are processed in blocks of
 * ROWS so that each row of the other operand is read from memory once per block, not once per row.
 * Sums are accumulated in double (see cpu_real.h) and rounded to `real` once. */
#include "cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

enum { ROWS = 4 };

/* sum_k a[k] b[k]; four partial sums let the compiler keep several multiply-adds in flight. */
static acc dot(const real *a, const real *b, int n) {
    acc s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += (acc)a[k] * b[k];
        s1 += (acc)a[k + 1] * b[k + 1];
        s2 += (acc)a[k + 2] * b[k + 2];
        s3 += (acc)a[k + 3] * b[k + 3];
    }
    for (; k < n; k++) s0 += (acc)a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* t[k] += c * v[k] for k < n */
static void axpy(acc *t, real c, const real *v, int n) {
    for (int k = 0; k < n; k++) t[k] += (acc)c * v[k];
}

static int min_int(int a, int b) { return a < b ? a : b; }

void CPU_FN(cpu_matmul_fwd)(gt_backend *be, void *y, const void *x, const void *w, int N, int IC,
                            int OC) {
    real *ys = y;
    const real *xs = x, *ws = w;
    for (int n0 = 0; n0 < N; n0 += ROWS) {
        const int nb = min_int(ROWS, N - n0);
        for (int o = 0; o < OC; o++) {
            const real *wr = ws + (size_t)o * IC;
            for (int r = 0; r < nb; r++) {
                const size_t n = (size_t)(n0 + r);
                ys[n * OC + o] = (real)dot(xs + n * IC, wr, IC);
            }
        }
    }
}

/* dx[n, :] = sum_o dy[n, o] W[o, :], a block of ROWS token rows at a time. */
static void matmul_dx(real *dx, const real *dy, const real *w, int N, int IC, int OC, acc *tmp) {
    for (int n0 = 0; n0 < N; n0 += ROWS) {
        const int nb = min_int(ROWS, N - n0);
        memset(tmp, 0, (size_t)nb * IC * sizeof(acc));
        for (int o = 0; o < OC; o++) {
            const real *wr = w + (size_t)o * IC;
            for (int r = 0; r < nb; r++)
                axpy(tmp + (size_t)r * IC, dy[(size_t)(n0 + r) * OC + o], wr, IC);
        }
        for (int r = 0; r < nb; r++) {
            real *dxr = dx + (size_t)(n0 + r) * IC;
            for (int k = 0; k < IC; k++) dxr[k] = (real)tmp[(size_t)r * IC + k];
        }
    }
}

/* dW[o, :] (+)= sum_n dy[n, o] x[n, :], a block of ROWS output rows at a time. */
static void matmul_dw(const gt_backend *be, real *dw, const real *dy, const real *x, int N, int IC, int OC, acc *tmp,
                      int add) {
    for (int o0 = 0; o0 < OC; o0 += ROWS) {
        const int ob = min_int(ROWS, OC - o0);
        memset(tmp, 0, (size_t)ob * IC * sizeof(acc));
        for (int n = 0; n < N; n++) {
            const real *xr = x + (size_t)n * IC;
            for (int r = 0; r < ob; r++)
                axpy(tmp + (size_t)r * IC, dy[(size_t)n * OC + o0 + r], xr, IC);
        }
        for (int r = 0; r < ob; r++) {
            real *dwr = dw + (size_t)(o0 + r) * IC;
            for (int k = 0; k < IC; k++)
                dwr[k] = cpu_grad_store(be, (real)((add ? (acc)dwr[k] : 0) + tmp[(size_t)r * IC + k]));
        }
    }
}

void CPU_FN(cpu_matmul_bwd)(gt_backend *be, void *dx, void *dw, const void *dy, const void *x,
                            const void *w, int N, int IC, int OC) {
    acc *tmp = gt_malloc((size_t)ROWS * (size_t)(IC > 0 ? IC : 1) * sizeof(acc));
    if (dx) matmul_dx(dx, dy, w, N, IC, OC, tmp);
    if (dw) matmul_dw(be, dw, dy, x, N, IC, OC, tmp, !be->dw_overwrite);
    free(tmp);
}

void CPU_FN(cpu_set_dw_accumulate)(gt_backend *be, int accumulate) { be->dw_overwrite = !accumulate; }

void CPU_FN(cpu_set_grad_bf16)(gt_backend *be, int on) { be->grad_bf16 = on; }
