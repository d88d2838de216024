/* The fused GeGLU + FP8 cast ops of the CPU backends (kernels/ops.h geglu_fwd_fp8, geglu_bwd_fp8)
 * against their contract: bit-identical to geglu_fwd / geglu_bwd followed by fp8_cast.
 * For "cpu" (float) and "cpu64" (double), both GELUs, both FP8 formats and shapes from 1x1 to
 * 144x272 (odd ones included), on random inputs spread over 2^-6..2^7 (so the FP8 codes range from
 * subnormals to saturation), with amax starting at 0 or above the data's:
 *   every output present; the ACT output NULL; only the FP8 output; only the transpose; amax only;
 *   and for the backward da aliasing a (as the model may call it).
 * Compared: the bytes of h / da (real), h8 / da8, h8t / da8t, and the bits of amax. Outputs are
 * poisoned first, so an element the fused op does not write fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fused_fp8_harness.h"
#include "kernels/ops.h"

/* n random ACT values: uniform sign and mantissa, magnitudes 2^-6 .. 2^7. */
static void *rand_act(env *e, size_t n) { return rand_act_spread(e, n, -1, 1, 14, 64); }

static void test_fwd(gt_check *c, env *e, gt_gelu kind, gt_dtype fmt, int N, int F, float amax0) {
    const gt_ops *o = e->ops;
    size_t n = (size_t)N * F, act = o->size[GT_ACT];
    float scale = (fmt == GT_E4M3 ? 448.0f : 57344.0f) / 1024.0f; /* the largest |h| saturate */
    void *a = rand_act(e, 2 * n);
    /* the composition */
    void *h = poisoned(e, n * act);
    uint8_t *q = poisoned(e, n), *qt = poisoned(e, n);
    float amax = amax0;
    o->geglu_fwd(e->be, h, a, kind, N, F);
    o->fp8_cast(e->be, q, qt, h, N, F, fmt, &scale, &amax);
    for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
        const variant *w = &VARIANTS[v];
        void *fh = poisoned(e, n * act);
        uint8_t *fq = poisoned(e, n), *fqt = poisoned(e, n);
        float famax = amax0;
        o->geglu_fwd_fp8(e->be, w->act ? fh : NULL, w->q ? fq : NULL, w->qt ? fqt : NULL, a, kind, N,
                         F, fmt, &scale, &famax);
        int ok = bits(famax) == bits(amax) && (!w->act || same(fh, h, n * act)) &&
                 (!w->q || same(fq, q, n)) && (!w->qt || same(fqt, qt, n));
        gt_check_true(c, ok, "%s geglu_fwd_fp8 %s %s %dx%d %s amax0 %g: differs (amax %g vs %g)",
                      o->name, kind == GT_GELU_TANH ? "tanh" : "erf", fmt == GT_E4M3 ? "E4M3" : "E5M2",
                      N, F, w->name, amax0, famax, amax);
        o->release(e->be, fh), o->release(e->be, fq), o->release(e->be, fqt);
    }
    o->release(e->be, a), o->release(e->be, h), o->release(e->be, q), o->release(e->be, qt);
}

static void test_bwd(gt_check *c, env *e, gt_gelu kind, gt_dtype fmt, int N, int F, float amax0) {
    const gt_ops *o = e->ops;
    size_t n = (size_t)N * F, act = o->size[GT_ACT];
    float scale = (fmt == GT_E4M3 ? 448.0f : 57344.0f) / 1024.0f;
    void *a = rand_act(e, 2 * n), *dh = rand_act(e, n);
    void *da = poisoned(e, 2 * n * act);
    uint8_t *q = poisoned(e, 2 * n), *qt = poisoned(e, 2 * n);
    float amax = amax0;
    o->geglu_bwd(e->be, da, dh, a, kind, N, F);
    o->fp8_cast(e->be, q, qt, da, N, 2 * F, fmt, &scale, &amax);
    const char *kn = kind == GT_GELU_TANH ? "tanh" : "erf", *fn = fmt == GT_E4M3 ? "E4M3" : "E5M2";
    for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
        const variant *w = &VARIANTS[v];
        void *fda = poisoned(e, 2 * n * act);
        uint8_t *fq = poisoned(e, 2 * n), *fqt = poisoned(e, 2 * n);
        float famax = amax0;
        o->geglu_bwd_fp8(e->be, w->act ? fda : NULL, w->q ? fq : NULL, w->qt ? fqt : NULL, dh, a,
                         kind, N, F, fmt, &scale, &famax);
        int ok = bits(famax) == bits(amax) && (!w->act || same(fda, da, 2 * n * act)) &&
                 (!w->q || same(fq, q, 2 * n)) && (!w->qt || same(fqt, qt, 2 * n));
        gt_check_true(c, ok, "%s geglu_bwd_fp8 %s %s %dx%d %s amax0 %g: differs (amax %g vs %g)",
                      o->name, kn, fn, N, F, w->name, amax0, famax, amax);
        o->release(e->be, fda), o->release(e->be, fq), o->release(e->be, fqt);
    }
    /* da aliasing a: the gradient overwrites the fc1 output it is computed from */
    void *alias = o->alloc(e->be, 2 * n * act);
    o->copy(e->be, alias, a, 2 * n * act);
    uint8_t *fq = poisoned(e, 2 * n), *fqt = poisoned(e, 2 * n);
    float famax = amax0;
    o->geglu_bwd_fp8(e->be, alias, fq, fqt, dh, alias, kind, N, F, fmt, &scale, &famax);
    int ok = bits(famax) == bits(amax) && same(alias, da, 2 * n * act) && same(fq, q, 2 * n) &&
             same(fqt, qt, 2 * n);
    gt_check_true(c, ok, "%s geglu_bwd_fp8 %s %s %dx%d da aliasing a: differs", o->name, kn, fn, N, F);
    o->release(e->be, alias), o->release(e->be, fq), o->release(e->be, fqt);
    o->release(e->be, a), o->release(e->be, dh), o->release(e->be, da), o->release(e->be, q),
        o->release(e->be, qt);
}

int main(void) {
    gt_check c = {0};
    gt_backend *be = gt_cpu_backend_create();
    const gt_ops *backends[2] = {gt_cpu_ops(), gt_cpu64_ops()};
    /* N x F of h: single elements, odd, 16-aligned, partial 128-tiles (the GPU's tiled shapes) */
    const int shapes[][2] = {{1, 1}, {3, 5}, {17, 40}, {16, 16}, {33, 7}, {144, 272}, {40, 17}};
    for (int b = 0; b < 2; b++) {
        env e = {backends[b], be, 12345u + (uint64_t)b};
        GT_ASSERT(e.ops->geglu_fwd_fp8 && e.ops->geglu_bwd_fp8, "backend %s has no fused GeGLU FP8 ops",
                  e.ops->name);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int k = 0; k < 2; k++)
                for (int f = 0; f < 2; f++) {
                    gt_gelu kind = k ? GT_GELU_ERF : GT_GELU_TANH;
                    gt_dtype fmt = f ? GT_E5M2 : GT_E4M3;
                    float amax0 = (s + k + f) % 3 == 2 ? 1e6f : 0.0f; /* above every |h|: kept */
                    test_fwd(&c, &e, kind, fmt, shapes[s][0], shapes[s][1], amax0);
                    test_bwd(&c, &e, kind, fmt, shapes[s][0], shapes[s][1], amax0);
                }
    }
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "geglu_fp8");
}
