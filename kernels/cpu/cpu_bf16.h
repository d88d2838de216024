/* Rounding a `real` to bf16 precision (kept in a `real`): how the CPU backends emulate what the
 * CUDA backend stores in bf16 — the lean AdamW state (optimizer.c) and bf16 parameter gradients
 * (ops.h set_grad_bf16). To nearest even, or stochastically with 16 random bits r16
 * (kernels/bf16_round.h). cpu64 rounds its doubles by the double form of the same rule: identical
 * to the float one for every value a float holds. */
#ifndef GT_CPU_BF16_H
#define GT_CPU_BF16_H

#include <math.h>
#include <string.h>

#include "cpu_real.h"
#include "kernels/bf16_round.h"

#if GT_CPU_REAL_BITS == 32
static inline real cpu_bf16_rne(real x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = gt_bf16_bits_rne(u) << 16;
    memcpy(&x, &u, sizeof x);
    return x;
}
static inline real cpu_bf16_sr(real x, uint32_t r16) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = gt_bf16_bits_sr(u, r16) << 16;
    memcpy(&x, &u, sizeof x);
    return x;
}
#else
/* |x| = (k + f) ulp with k an integer and f in [0, 1), ulp that of bf16 at |x| (8 significant
 * bits; subnormal below 2^-126, as fp32). up(f, k) says whether to take k + 1. A result of 2^128
 * or more is beyond bf16 (and fp32): infinity. */
static inline double cpu_bf16_round_f64(double x, int sr, uint32_t r16) {
    if (!isfinite(x) || x == 0) return x;
    double ax = fabs(x);
    int e;
    frexp(ax, &e);
    int q = e - 8 < -133 ? -133 : e - 8;
    double scaled = ldexp(ax, -q), k = floor(scaled), f = scaled - k;
    int up = sr ? f * 65536.0 + (double)r16 >= 65536.0 : (f > 0.5 || (f == 0.5 && fmod(k, 2.0) == 1.0));
    double r = ldexp(k + (up ? 1.0 : 0.0), q);
    if (r >= 0x1p128) r = INFINITY;
    return x < 0 ? -r : r;
}
static inline real cpu_bf16_rne(real x) { return cpu_bf16_round_f64(x, 0, 0); }
static inline real cpu_bf16_sr(real x, uint32_t r16) { return cpu_bf16_round_f64(x, 1, r16); }
#endif

#endif
