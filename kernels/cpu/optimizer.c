/* Optimizer ops: the squared gradient norm (for clipping) and AdamW as torch.optim.AdamW
 * (single-tensor path) computes it:
 *   g' = g * grad_scale
 *   p *= 1 - lr wd                                  decoupled weight decay, applied first
 *   m  = lerp(m, g', 1 - b1)   v = b2 v + (1 - b2) g'^2
 *   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The scalar factors are computed in double (Python floats in torch) and used in `real`. */
#include "cpu_kernels.h"

#include <math.h>

/* out[0] += sum g^2 over n GRAD elements, summed in double. */
void CPU_FN(cpu_grad_sumsq)(gt_backend *be, void *out, const void *g, size_t n) {
    real *o = out;
    const real *gs = g;
    acc s = 0;
    for (size_t i = 0; i < n; i++) s += (acc)gs[i] * gs[i];
    o[0] = (real)((acc)o[0] + s);
}

/* torch.lerp(a, b, w) = a + w (b - a) for w < 0.5, else b - (b - a)(1 - w). */
static real lerp(real a, real b, real w) {
    return w < (real)0.5 ? a + w * (b - a) : b - (b - a) * ((real)1 - w);
}

/* param, m, v, grad: n elements. The CPU backends keep no separate master copy (master is NULL and
 * param is updated in place); a non-NULL master is updated instead and then copied to param. */
void CPU_FN(cpu_adamw)(gt_backend *be, void *param, void *master, void *m, void *v,
                       const void *grad, size_t n, const gt_adamw_args *args) {
    GT_ASSERT(args->step >= 1, "adamw: step must be 1-based, got %d", args->step);
    real *p = master ? master : param, *ms = m, *vs = v;
    const real *gs = grad;
    const double bc1 = 1.0 - pow((double)args->beta1, args->step);
    const double bc2 = 1.0 - pow((double)args->beta2, args->step);
    const real decay = (real)(1.0 - (double)args->lr * args->weight_decay);
    const real step_size = (real)((double)args->lr / bc1);
    const real bc2_sqrt = (real)sqrt(bc2);
    const real w1 = (real)(1.0 - args->beta1), b2 = (real)args->beta2;
    const real w2 = (real)(1.0 - args->beta2);
    const real eps = (real)args->eps, gscale = (real)args->grad_scale;
    for (size_t i = 0; i < n; i++) {
        const real g = gs[i] * gscale;
        p[i] *= decay;
        ms[i] = lerp(ms[i], g, w1);
        vs[i] = vs[i] * b2 + w2 * g * g;
        p[i] -= step_size * ms[i] / (r_sqrt(vs[i]) / bc2_sqrt + eps);
    }
    if (master) {
        real *ps = param;
        for (size_t i = 0; i < n; i++) ps[i] = p[i];
    }
}
