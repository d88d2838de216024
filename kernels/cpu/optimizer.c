/* Optimizer ops: the squared gradient norm (for clipping) and AdamW as torch.optim.AdamW
 * (single-tensor path) computes it:
 *   g' = g * grad_scale
 *   p *= 1 - lr wd                                  decoupled weight decay, applied first
 *   m  = lerp(m, g', 1 - b1)   v = b2 v + (1 - b2) g'^2
 *   p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The scalar factors are computed in double (Python floats in torch) and used in `real`.
 *
 * The lean states (args->state, DESIGN.md §5) are emulated exactly: the math stays in `real`, and
 * each stored value is rounded to bf16 precision (kept in a `real`) as the CUDA backend stores it
 * in bf16: m and v to nearest even, and with GT_OPT_BF16 the parameter stochastically
 * (kernels/bf16_round.h; cpu_bf16.h). With bf16 gradients (ops.h set_grad_bf16) the gradient
 * is read as it was stored, already rounded. */
#include "cpu_kernels.h"

#include <math.h>

#include "cpu_bf16.h"

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

static real round_rne(real x, uint32_t r16) {
    (void)r16;
    return cpu_bf16_rne(x);
}
static real round_sr(real x, uint32_t r16) { return cpu_bf16_sr(x, r16); }

/* How each stored value is kept: as computed (fp32 state; also cpu64's float64 master), or
 * rounded to bf16. */
static real keep(real x, uint32_t r16) {
    (void)r16;
    return x;
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
    real (*round_m)(real, uint32_t) = args->state == GT_OPT_FP32 ? keep : round_rne;
    real (*round_p)(real, uint32_t) = args->state == GT_OPT_BF16 ? round_sr : keep;
    const uint64_t key = gt_sr_key(args->seed, (uint64_t)args->step);
    for (size_t i = 0; i < n; i++) {
        const real g = gs[i] * gscale;
        real pi = p[i] * decay;
        const real mi = lerp(ms[i], g, w1);
        const real vi = vs[i] * b2 + w2 * g * g;
        pi -= step_size * mi / (r_sqrt(vi) / bc2_sqrt + eps);
        ms[i] = round_m(mi, 0);
        vs[i] = round_m(vi, 0);
        p[i] = round_p(pi, args->state == GT_OPT_BF16 ? gt_sr_bits(key, args->index0 + i) : 0);
    }
    if (master) {
        real *ps = param;
        for (size_t i = 0; i < n; i++) ps[i] = p[i];
    }
}
