/* The fused RMSNorm + FP8 cast op of the CPU backends (kernels/ops.h rmsnorm_fwd_fp8) against its
 * contract: bit-identical to rmsnorm_fwd followed by fp8_cast.
 * For "cpu" (float) and "cpu64" (double), both FP8 formats and shapes from 1x1 to 144x272 (odd ones
 * included), on random rows whose magnitudes are spread over 2^13 (so the normalized values, times
 * the scale below, range from saturation down to E4M3's subnormals) and random gammas in (-1, 1.5),
 * with amax starting at 0 or above the data's:
 *   every output present; y NULL (the model's call); only the FP8 output; only the transpose; amax
 *   only; y + amax.
 * Compared: the bytes of rstd and y (real), y8, y8t, and the bits of amax. Outputs are poisoned
 * first, so an element the fused op does not write fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fused_fp8_harness.h"
#include "kernels/ops.h"

/* n ACT values uniform in [lo, hi), each times 2^k for k uniform in 0..spread-1. */
static void *rand_act(env *e, size_t n, float lo, float hi, int spread) {
    return rand_act_spread(e, n, lo, hi, spread, 1);
}

static void test_fwd(gt_check *c, env *e, gt_dtype fmt, int N, int C, float amax0) {
    const gt_ops *o = e->ops;
    size_t n = (size_t)N * C, act = o->size[GT_ACT], st = o->size[GT_STAT];
    const float eps = 1e-6f;
    /* |y| reaches ~sqrt(C) * 2.5 for a row with one dominant element: the largest saturate */
    float scale = (fmt == GT_E4M3 ? 448.0f : 57344.0f) / 8.0f;
    void *x = rand_act(e, n, -1, 1, 14), *w = rand_act(e, (size_t)C, -1, 1.5f, 1);
    /* the composition */
    void *y = poisoned(e, n * act), *rstd = poisoned(e, (size_t)N * st);
    uint8_t *q = poisoned(e, n), *qt = poisoned(e, n);
    float amax = amax0;
    o->rmsnorm_fwd(e->be, y, rstd, x, w, eps, N, C);
    o->fp8_cast(e->be, q, qt, y, N, C, fmt, &scale, &amax);
    for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++) {
        const variant *k = &VARIANTS[v];
        void *fy = poisoned(e, n * act), *frstd = poisoned(e, (size_t)N * st);
        uint8_t *fq = poisoned(e, n), *fqt = poisoned(e, n);
        float famax = amax0;
        o->rmsnorm_fwd_fp8(e->be, k->act ? fy : NULL, k->q ? fq : NULL, k->qt ? fqt : NULL, frstd, x,
                           w, eps, N, C, fmt, &scale, &famax);
        int ok = bits(famax) == bits(amax) && same(frstd, rstd, (size_t)N * st) &&
                 (!k->act || same(fy, y, n * act)) && (!k->q || same(fq, q, n)) &&
                 (!k->qt || same(fqt, qt, n));
        gt_check_true(c, ok, "%s rmsnorm_fwd_fp8 %s %dx%d %s amax0 %g: differs (amax %g vs %g)",
                      o->name, fmt == GT_E4M3 ? "E4M3" : "E5M2", N, C, k->name, amax0, famax, amax);
        o->release(e->be, fy), o->release(e->be, frstd), o->release(e->be, fq), o->release(e->be, fqt);
    }
    /* the composition reached the format's top (both formats) and E4M3's subnormals (E5M2's lie
     * 2^32 below its max, beyond these rows' spread) */
    if (n >= 4096) {
        uint8_t top = fmt == GT_E4M3 ? 0x7e : 0x7b, sub_top = fmt == GT_E4M3 ? 0x07 : 0x03;
        int sat = 0, sub = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t m = q[i] & 0x7f;
            sat += m == top, sub += m > 0 && m <= sub_top;
        }
        gt_check_true(c, sat > 0 && (sub > 0 || fmt == GT_E5M2),
                      "%s %s %dx%d: %d saturated, %d subnormal codes", o->name,
                      fmt == GT_E4M3 ? "E4M3" : "E5M2", N, C, sat, sub);
    }
    o->release(e->be, x), o->release(e->be, w), o->release(e->be, y), o->release(e->be, rstd);
    o->release(e->be, q), o->release(e->be, qt);
}

int main(void) {
    gt_check c = {0};
    gt_backend *be = gt_cpu_backend_create();
    const gt_ops *backends[2] = {gt_cpu_ops(), gt_cpu64_ops()};
    /* N x C: single elements, odd, 16-aligned, partial 128-tiles (the GPU's tiled shapes) */
    const int shapes[][2] = {{1, 1}, {3, 5}, {17, 40}, {16, 16}, {33, 7}, {144, 272}, {40, 17}, {64, 128}};
    for (int b = 0; b < 2; b++) {
        env e = {backends[b], be, 4242u + (uint64_t)b};
        GT_ASSERT(e.ops->rmsnorm_fwd_fp8, "backend %s has no fused RMSNorm FP8 op", e.ops->name);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int f = 0; f < 2; f++) {
                float amax0 = (s + f) % 3 == 2 ? 1e6f : 0.0f; /* above every |y|: kept */
                test_fwd(&c, &e, f ? GT_E5M2 : GT_E4M3, shapes[s][0], shapes[s][1], amax0);
            }
    }
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "rmsnorm_fp8");
}
