/* GeGLU of the Gemma MLP: h = gelu(gate) * up, with a = fc1 output [N, 2F] = [gate | up] per row.
 * The two GELUs, written as torch's CPU kernels write them (constants in the element type):
 *   tanh: 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi)   ("gelu_pytorch_tanh")
 *   erf:  0.5 x (1 + erf(x / sqrt(2)))                             ("gelu") */
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
