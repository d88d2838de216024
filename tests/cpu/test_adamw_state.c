/* The lean AdamW states (optim.state; kernels/ops.h gt_opt_state) of the CPU backends against a
 * float64 reference written here: the same AdamW arithmetic, and its own bit-level bf16 rounding of
 * a double (truncate the 45 low mantissa bits; round to nearest even, or stochastically with the
 * 16 bits of kernels/bf16_round.h's hash).
 *   - cpu64 (math in double, stored values rounded) equals the reference bitwise, three steps, for
 *     bf16_moments and bf16;
 *   - cpu (math in float) stays within one bf16 ulp of it, every stored value bf16-representable;
 *   - stochastic rounding is unbiased: 65536 weights at 0.75 (bf16 ulp 2^-8) take an update of
 *     1e-4 (a fortieth of an ulp, so round-to-nearest would never move them) for 50 steps; their
 *     mean follows the fp32 state's weight within 5 sigma of the rounding noise (biased rounding
 *     misses by > 20 sigma); the same seed gives the same bits, another seed other bits. */
#include "check.h"
#include "kernels/bf16_round.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const gt_ops *ops;
    gt_backend *be;
} env;

/* n doubles to a backend buffer of `real`s (values representable in float, so both builds get
 * the same numbers), and back. */
static void *put(const env *e, const double *src, size_t n) {
    void *d = e->ops->alloc(e->be, n * e->ops->size[GT_GRAD]);
    if (e->ops->size[GT_GRAD] == sizeof(double)) {
        memcpy(d, src, n * sizeof(double));
    } else {
        float *f = d;
        for (size_t i = 0; i < n; i++) f[i] = (float)src[i];
    }
    return d;
}

static void take(const env *e, double *dst, const void *src, size_t n) {
    if (e->ops->size[GT_GRAD] == sizeof(double)) {
        memcpy(dst, src, n * sizeof(double));
    } else {
        const float *f = src;
        for (size_t i = 0; i < n; i++) dst[i] = f[i];
    }
}

/* bf16 rounding of a double in fp32's normal range, on its bits. */
static double ref_bf16(double x, int sr, uint32_t r16) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    const uint64_t sign = u & (1ull << 63), drop = 45, half = 1ull << (drop - 1);
    u &= ~(1ull << 63);
    GT_ASSERT(x == 0 || fabs(x) >= 0x1p-126, "reference rounding: %g is below fp32's normal range", x);
    uint64_t rem = u & ((1ull << drop) - 1), lo = u - rem;
    int up = sr ? (rem >> 29) + r16 >= 65536u : rem > half || (rem == half && ((lo >> drop) & 1));
    u = (lo + (up ? 1ull << drop : 0)) | sign;
    memcpy(&x, &u, sizeof x);
    return x;
}

static double lerp(double a, double b, double w) { return w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w); }

/* One step on element i (index index0 + i), in the op's order (kernels/cpu/optimizer.c). */
static void ref_step(double *p, double *m, double *v, double g, const gt_adamw_args *a, size_t i) {
    const double bc1 = 1.0 - pow((double)a->beta1, a->step), bc2 = 1.0 - pow((double)a->beta2, a->step);
    g *= (double)a->grad_scale;
    double pi = *p * (1.0 - (double)a->lr * a->weight_decay);
    double mi = lerp(*m, g, 1.0 - a->beta1), vi = *v * a->beta2 + (1.0 - a->beta2) * g * g;
    pi -= ((double)a->lr / bc1) * mi / (sqrt(vi) / sqrt(bc2) + (double)a->eps);
    int lean = a->state != GT_OPT_FP32;
    *m = lean ? ref_bf16(mi, 0, 0) : mi;
    *v = lean ? ref_bf16(vi, 0, 0) : vi;
    uint32_t r = gt_sr_bits(gt_sr_key(a->seed, (uint64_t)a->step), a->index0 + i);
    *p = a->state == GT_OPT_BF16 ? ref_bf16(pi, 1, r) : pi;
}

static double ulp_bf16(double x) {
    int e;
    frexp(fabs(x), &e);
    return ldexp(1.0, e - 8);
}

static int is_bf16(double x) {
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (double)f == x && (u & 0xffffu) == 0;
}

static double uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 40) / 16777216.0;
}

/* Three steps of the op on n elements against the reference: cpu64 bitwise, cpu within one bf16
 * ulp (bf16 values) or 1e-5 relative (the fp32 master). */
static void check_state(gt_check *c, const env *e, int state) {
    enum { n = 1003, steps = 3 };
    const char *name = e->ops->name;
    gt_adamw_args a = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0, state, 77, 12345};
    static double p[n], m[n], v[n], rp[n], rm[n], rv[n], g[n];
    uint64_t s = 99;
    for (int i = 0; i < n; i++) rp[i] = p[i] = (float)(uniform(&s) * 2 - 1), rm[i] = rv[i] = m[i] = v[i] = 0;
    void *dp = put(e, p, n), *dm = put(e, m, n), *dv = put(e, v, n);
    for (int t = 1; t <= steps; t++) {
        for (int i = 0; i < n; i++) g[i] = (float)(uniform(&s) * 2 - 1);
        void *dg = put(e, g, n);
        a.step = t;
        e->ops->adamw(e->be, dp, NULL, dm, dv, dg, n, &a);
        e->ops->release(e->be, dg);
        for (int i = 0; i < n; i++) ref_step(&rp[i], &rm[i], &rv[i], g[i], &a, (size_t)i);
    }
    take(e, p, dp, n), take(e, m, dm, n), take(e, v, dv, n);
    int exact = e->ops->size[GT_GRAD] == sizeof(double);
    int bad_p = 0, bad_mv = 0, unrounded = 0;
    for (int i = 0; i < n; i++) {
        if (exact) {
            bad_p += p[i] != rp[i];
            bad_mv += (m[i] != rm[i]) + (v[i] != rv[i]);
        } else {
            bad_p += state == GT_OPT_BF16 ? fabs(p[i] - rp[i]) > ulp_bf16(rp[i]) : fabs(p[i] - rp[i]) > 1e-5 * fabs(rp[i]);
            bad_mv += (fabs(m[i] - rm[i]) > ulp_bf16(rm[i])) + (fabs(v[i] - rv[i]) > ulp_bf16(rv[i]));
        }
        unrounded += !is_bf16(m[i]) + !is_bf16(v[i]) + (state == GT_OPT_BF16 && !is_bf16(p[i]));
    }
    gt_check_true(c, bad_p == 0, "%s state %d: %d of %d weights differ from the reference", name, state, bad_p, n);
    gt_check_true(c, bad_mv == 0, "%s state %d: %d of %d moments differ from the reference", name, state, bad_mv, 2 * n);
    gt_check_true(c, unrounded == 0, "%s state %d: %d stored values are not bf16 values", name, state, unrounded);
    e->ops->release(e->be, dp), e->ops->release(e->be, dm), e->ops->release(e->be, dv);
}

/* 50 steps of a 1e-4 update of weights at 0.75 (gradient 1, no decay: the step is lr each time)
 * with the given state and seed; returns the mean weight, out[n] the weights. */
static double stagnation_run(const env *e, int state, uint64_t seed, double *out, size_t n) {
    gt_adamw_args a = {1e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 0, state, seed, 0};
    double *init = malloc(n * sizeof *init);
    for (size_t i = 0; i < n; i++) init[i] = 0.75;
    void *dp = put(e, init, n);
    for (size_t i = 0; i < n; i++) init[i] = 1.0;
    void *dg = put(e, init, n);
    size_t mb = n * e->ops->size[state == GT_OPT_FP32 ? GT_GRAD : GT_ACT];
    void *dm = e->ops->alloc(e->be, mb), *dv = e->ops->alloc(e->be, mb);
    for (int t = 1; t <= 50; t++) {
        a.step = t;
        e->ops->adamw(e->be, dp, NULL, dm, dv, dg, n, &a);
    }
    take(e, out, dp, n);
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += out[i];
    e->ops->release(e->be, dp), e->ops->release(e->be, dg), e->ops->release(e->be, dm), e->ops->release(e->be, dv);
    free(init);
    return mean / (double)n;
}

static void check_unbiased(gt_check *c, const env *e) {
    const size_t n = 65536;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), one;
    double target = stagnation_run(e, GT_OPT_FP32, 0, &one, 1); /* the fp32 weight after 50 steps */
    double mean = stagnation_run(e, GT_OPT_BF16, 5, a, n);
    /* Each step's rounding error has mean 0 and |error| < ulp (2^-8 here): the 50 are a
     * martingale, so an element's sd is below ulp * sqrt(50) / 2 and the mean's below that /
     * sqrt(n). Round-to-nearest would stay at 0.75: 0.005 off, about 90 of these sigmas. */
    double sigma = ldexp(1.0, -8) * sqrt(50.0) / 2 / sqrt((double)n);
    gt_check_true(c, fabs(target - 0.745) < 1e-5, "%s: the fp32 state's weight %.7f, expected 0.745", e->ops->name, target);
    gt_check_true(c, fabs(mean - target) < 5 * sigma, "%s: stochastically rounded mean %.7f vs %.7f (%.1f sigma)",
                  e->ops->name, mean, target, fabs(mean - target) / sigma);
    int moved = 0;
    for (size_t i = 0; i < n; i++) moved += a[i] != 0.75;
    gt_check_true(c, moved > (int)n / 2, "%s: %d of %zu weights moved", e->ops->name, moved, n);
    stagnation_run(e, GT_OPT_BF16, 5, b, n);
    gt_check_true(c, !memcmp(a, b, n * sizeof *a), "%s: the same seed gives the same bits", e->ops->name);
    stagnation_run(e, GT_OPT_BF16, 6, b, n);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) same += a[i] == b[i];
    gt_check_true(c, same < n, "%s: another seed gives other bits (%zu of %zu equal)", e->ops->name, same, n);
    free(a), free(b);
}

int main(void) {
    gt_check c = {0, 0};
    gt_backend *be = gt_cpu_backend_create();
    env e64 = {gt_cpu64_ops(), be}, e32 = {gt_cpu_ops(), be};
    for (int state = GT_OPT_BF16_MOMENTS; state <= GT_OPT_BF16; state++) {
        check_state(&c, &e64, state);
        check_state(&c, &e32, state);
    }
    check_unbiased(&c, &e32);
    check_unbiased(&c, &e64);
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "adamw_state");
}
