/* GeGLU of the Gemma MLP: h = gelu(gate) * up, with a = fc1 output [N, 2F] = [gate | up] per row.
 * The two GELUs, written as torch's CPU kernels write them (constants in the element type):
 *   tanh: 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi)   ("gelu_pytorch_tanh")
 *   erf:  0.5 x (1 + erf(x / sqrt(2)))                             ("gelu") */
#include <stdlib.h>

#include "cpu_kernels.h"

#define GT_SQRT_2_OVER_PI 0.79788456080286535587989211986876
#define GT_SQRT1_2        0.70710678118654752440084436210485
#define GT_INV_SQRT_2PI   0.39894228040143267793994605993438
#define GT_GELU_KAPPA     0.044715

/* gelu(x) and, when d is not NULL, its derivative *d. */
static real gelu(real x, gt_gelu kind, real *d) {
    const real half = (real)0.5, one = (real)1;
    if (kind == GT_GELU_TANH) {
        const real k = (real)GT_SQRT_2_OVER_PI, kappa = (real)GT_GELU_KAPPA;
        const real t = r_tanh(k * (x + kappa * (x * x * x)));
        /* d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 kappa x^2) */
        if (d)
            *d = half * (one + t) + half * x * (one - t * t) * k * (one + (real)3 * kappa * x * x);
        return half * x * (one + t);
    }
    GT_ASSERT(kind == GT_GELU_ERF, "geglu: unknown gelu kind %d", (int)kind);
    const real one_plus_erf = one + r_erf(x * (real)GT_SQRT1_2);
    /* d/dx = Phi(x) + x phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)) */
    if (d) *d = half * one_plus_erf + x * (real)GT_INV_SQRT_2PI * r_exp(-half * x * x);
    return (x * half) * one_plus_erf;
}

/* h[N, F] = gelu(a[:, 0:F]) * a[:, F:2F] */
void CPU_FN(cpu_geglu_fwd)(gt_backend *be, void *h, const void *a, gt_gelu kind, int N, int F) {
    real *hs = h;
    const real *as = a;
    for (int n = 0; n < N; n++) {
        const real *gate = as + (size_t)n * 2 * F, *up = gate + F;
        real *hr = hs + (size_t)n * F;
        for (int f = 0; f < F; f++) hr[f] = gelu(gate[f], kind, NULL) * up[f];
    }
}

/* da[N, 2F] (overwritten): dgate = dh * up * gelu'(gate), dup = dh * gelu(gate). */
void CPU_FN(cpu_geglu_bwd)(gt_backend *be, void *da, const void *dh, const void *a, gt_gelu kind,
                           int N, int F) {
    real *das = da;
    const real *dhs = dh, *as = a;
    for (int n = 0; n < N; n++) {
        const real *gate = as + (size_t)n * 2 * F, *up = gate + F, *dhr = dhs + (size_t)n * F;
        real *dgate = das + (size_t)n * 2 * F, *dup = dgate + F;
        for (int f = 0; f < F; f++) {
            real d;
            const real gl = gelu(gate[f], kind, &d);
            dgate[f] = dhr[f] * up[f] * d;
            dup[f] = dhr[f] * gl;
        }
    }
}

/* ---- fused with the FP8 cast of the output (ops.h geglu_fwd_fp8 / geglu_bwd_fp8) ----
 * Row by row: the row of h (or da) is computed by the functions above into h (da) or, when that is
 * NULL, a one-row scratch, and cast by fp8_cast's own row code: the composition, so bit-identical
 * to it by construction. The transposed codes of row n go to column n of h8t (da8t). */

void CPU_FN(cpu_geglu_fwd_fp8)(gt_backend *be, void *h, void *h8, void *h8t, const void *a,
                               gt_gelu kind, int N, int F, gt_dtype fmt, const float *scale,
                               float *amax) {
    if (N <= 0 || F <= 0) return;
    real *scratch = h ? NULL : gt_malloc((size_t)F * sizeof(real));
    uint8_t *o = h8, *ot = h8t;
    float m = *amax;
    for (int n = 0; n < N; n++) {
        real *row = h ? (real *)h + (size_t)n * F : scratch;
        CPU_FN(cpu_geglu_fwd)(be, row, (const real *)a + (size_t)n * 2 * F, kind, 1, F);
        CPU_FN(cpu_fp8_cast_row)(o ? o + (size_t)n * F : NULL, ot ? ot + n : NULL, (size_t)N, row, F,
                                 fmt, scale, &m);
    }
    *amax = m;
    free(scratch);
}

/* da may alias a: geglu_bwd reads each gate/up element before it writes the same da element. */
void CPU_FN(cpu_geglu_bwd_fp8)(gt_backend *be, void *da, void *da8, void *da8t, const void *dh,
                               const void *a, gt_gelu kind, int N, int F, gt_dtype fmt,
                               const float *scale, float *amax) {
    if (N <= 0 || F <= 0) return;
    real *scratch = da ? NULL : gt_malloc((size_t)2 * F * sizeof(real));
    uint8_t *o = da8, *ot = da8t;
    float m = *amax;
    for (int n = 0; n < N; n++) {
        real *row = da ? (real *)da + (size_t)n * 2 * F : scratch;
        CPU_FN(cpu_geglu_bwd)(be, row, (const real *)dh + (size_t)n * F,
                              (const real *)a + (size_t)n * 2 * F, kind, 1, F);
        CPU_FN(cpu_fp8_cast_row)(o ? o + (size_t)n * 2 * F : NULL, ot ? ot + n : NULL, (size_t)N, row,
                                 2 * F, fmt, scale, &m);
    }
    *amax = m;
    free(scratch);
}
