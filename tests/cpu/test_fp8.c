/* FP8 on the host: both formats' 256 codes decoded against an independent formula; float to FP8
 * against a brute-force nearest-code search (ties to the even code, saturation to the largest
 * finite value, NaN kept) over edge cases, every midpoint between neighbouring codes and random
 * floats; and the delayed-scaling state machine against hand-computed sequences (zero amax, inf,
 * NaN, margin, history wrap-around, both algorithms, the FLT_MAX rule). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../kernels/fp8.h"
#include "../../kernels/fp8_scaling.h"
#include "check.h"

typedef struct {
    const char *name;
    int exp_bits, man, bias, ieee; /* ieee: top exponent holds inf/NaN (E5M2) */
    float (*dec)(uint8_t);
    uint8_t (*enc)(float);
    double max;
} format;

/* Value of a code from the definition of the format, in double. */
static double reference_value(const format *f, int c) {
    int s = c >> 7, e = (c >> f->man) & ((1 << f->exp_bits) - 1), m = c & ((1 << f->man) - 1);
    int top = (1 << f->exp_bits) - 1;
    if (f->ieee && e == top) return m ? NAN : (s ? -INFINITY : INFINITY);
    if (!f->ieee && e == top && m == (1 << f->man) - 1) return NAN;
    double mag = e ? (1.0 + m / (double)(1 << f->man)) * pow(2.0, e - f->bias)
                   : m / (double)(1 << f->man) * pow(2.0, 1 - f->bias);
    return s ? -mag : mag;
}

/* Nearest finite code by search; ties go to the code with an even mantissa; beyond max: max. */
static uint8_t brute(const format *f, float x) {
    if (isnan(x)) return 0x7f;
    double a = fabs((double)x);
    int sign = signbit(x) ? 0x80 : 0;
    if (a >= f->max) return (uint8_t)(sign | f->enc(f->max));
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < 128; c++) {
        double v = reference_value(f, c);
        if (isnan(v) || isinf(v)) continue;
        double d = fabs(a - v);
        if (d < bd || (d == bd && (c & 1) == 0)) bd = d, best = c;
    }
    return (uint8_t)(sign | best);
}

static void check_format(gt_check *c, const format *f) {
    int bad = 0;
    for (int code = 0; code < 256; code++) {
        double want = reference_value(f, code), got = f->dec((uint8_t)code);
        if (!(isnan(want) ? isnan(got) : got == want)) bad++;
    }
    gt_check_true(c, bad == 0, "%s: %d of 256 codes decode wrongly", f->name, bad);
    float probes[4096];
    int n = 0;
    const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN, 1e-30f, -1e-30f, (float)f->max,
                           (float)f->max * 1.03f, (float)f->max * 1.1f, 1e30f, -1e30f, 1.0f, -1.0f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) probes[n++] = edges[i];
    for (int code = 0; code < 127 && n < 4000; code++) { /* midpoints and just around them */
        double lo = reference_value(f, code), hi = reference_value(f, code + 1);
        if (isnan(hi) || isinf(hi)) continue;
        float mid = (float)((lo + hi) / 2);
        probes[n++] = mid;
        probes[n++] = nextafterf(mid, INFINITY);
        probes[n++] = -nextafterf(mid, 0.0f);
    }
    int roundtrip_bad = 0, sweep_bad = 0;
    for (int code = 0; code < 256; code++) {
        double v = reference_value(f, code);
        if (!isnan(v) && !isinf(v) && f->enc((float)v) != code) roundtrip_bad++;
    }
    unsigned s = 12345;
    for (int i = 0; i < 200000; i++) {
        float x;
        if (i < n) x = probes[i];
        else {
            s = s * 1664525u + 1013904223u;
            x = ldexpf((float)(s >> 8) / 16777216.0f, (int)(s % 40) - 24 + (f->bias > 7 ? 0 : 0)) * ((s & 1) ? -1.0f : 1.0f);
        }
        uint8_t want = brute(f, x), got = f->enc(x);
        if (want != got && !(isnan(x) && isnan(f->dec(got)))) {
            if (sweep_bad < 5) printf("  %s: %.9g -> 0x%02x, want 0x%02x\n", f->name, x, got, want);
            sweep_bad++;
        }
    }
    gt_check_true(c, roundtrip_bad == 0, "%s: %d codes do not round-trip", f->name, roundtrip_bad);
    gt_check_true(c, sweep_bad == 0, "%s: %d of 200000 conversions differ from nearest-even search", f->name, sweep_bad);
}

static int near(float a, float b) { return a == b || fabsf(a - b) <= 1e-6f * fabsf(b); }

/* Two tensors, history length 3, stored [len][count]: slot i of tensor t at h[i * 2 + t]. */
typedef struct {
    float h[6], scale[2], scale_inv[2], max[2];
} state2;

static void upd(state2 *s, const float *reduced, int first, int n, gt_amax_algo algo, float margin, int len) {
    gt_fp8_update_arrays(s->h, s->scale, s->scale_inv, s->max, reduced, first, n, 2, len, algo, margin);
}

static void check_scaling(gt_check *c) {
    state2 s = {{0}, {1, 1}, {1, 1}, {448.0f, 57344.0f}};
#define H(t, i) s.h[(i) * 2 + (t)]
    /* step 1: tensor 0 saw amax 2 locally, 4 after the all-reduce; tensor 1 was not cast: untouched */
    H(0, 0) = 2.0f;
    float red[2] = {4.0f, 0.0f};
    upd(&s, red, 0, 2, GT_AMAX_MAX, 0, 3);
    gt_check_true(c, near(s.scale[0], 448.0f / 4) && H(0, 0) == 0 && H(0, 2) == 4.0f,
                  "max: scale %g history [%g %g %g]", s.scale[0], H(0, 0), H(0, 1), H(0, 2));
    gt_check_true(c, s.scale[1] == 1.0f && H(1, 0) == 0 && H(1, 2) == 0, "untouched tensor changed");
    /* the max over the window, until the 8 rolls out after three more updates */
    const float seq[] = {1.0f, 8.0f, 1.0f, 1.0f, 1.0f};
    const float want[] = {4.0f, 8.0f, 8.0f, 8.0f, 1.0f};
    for (int i = 0; i < 5; i++) {
        H(0, 0) = seq[i];
        upd(&s, NULL, 0, 1, GT_AMAX_MAX, 0, 3);
        gt_check_true(c, near(s.scale[0], 448.0f / want[i]), "max step %d: scale %g, want %g", i + 2,
                      s.scale[0], 448.0f / want[i]);
    }
    /* inf and NaN keep the old scale but roll into the history */
    float old = s.scale[0];
    H(0, 0) = INFINITY;
    upd(&s, NULL, 0, 1, GT_AMAX_MAX, 0, 3);
    gt_check_true(c, s.scale[0] == old && isinf(H(0, 2)), "inf: scale %g", s.scale[0]);
    H(0, 0) = NAN;
    upd(&s, NULL, 0, 1, GT_AMAX_MOST_RECENT, 1.0f, 3);
    gt_check_true(c, s.scale[0] == old && near(s.scale_inv[0], 1.0f / old), "nan: scale %g", s.scale[0]);
    /* most_recent with margin 1 on the E5M2 tensor: 57344 / 2 / 7 */
    H(1, 0) = 7.0f;
    upd(&s, NULL, 1, 1, GT_AMAX_MOST_RECENT, 1.0f, 3);
    gt_check_true(c, near(s.scale[1], 57344.0f / 2 / 7) && near(s.scale_inv[1], 7 * 2 / 57344.0f),
                  "most_recent margin 1: scale %g", s.scale[1]);
    /* a tiny amax: the scale would be infinite in fp32 -> FLT_MAX */
    H(1, 0) = 1e-40f;
    upd(&s, NULL, 1, 1, GT_AMAX_MOST_RECENT, 0, 3);
    gt_check_true(c, s.scale[1] == FLT_MAX, "tiny amax: scale %g, want FLT_MAX", s.scale[1]);
    /* history of length 1 (Megatron's setting) */
    state2 one = {{3.5f, 0}, {1, 1}, {1, 1}, {448.0f, 448.0f}};
    gt_fp8_update_arrays(one.h, one.scale, one.scale_inv, one.max, NULL, 0, 2, 2, 1, GT_AMAX_MOST_RECENT, 0);
    gt_check_true(c, near(one.scale[0], 128.0f) && one.h[0] == 0 && one.scale[1] == 1.0f, "len 1: scale %g", one.scale[0]);
#undef H
}

int main(void) {
    gt_check c = {0};
    const format e4m3 = {"E4M3", 4, 3, 7, 0, gt_e4m3_to_f32, gt_f32_to_e4m3, 448.0};
    const format e5m2 = {"E5M2", 5, 2, 15, 1, gt_e5m2_to_f32, gt_f32_to_e5m2, 57344.0};
    check_format(&c, &e4m3);
    check_format(&c, &e5m2);
    check_scaling(&c);
    return gt_check_done(&c, "fp8");
}
