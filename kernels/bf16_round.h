/* Rounding of optimizer state to bf16, shared by the CPU and CUDA backends (optim.state, DESIGN.md
 * §5): round-to-nearest-even for the moments, stochastic rounding for the weights of the pure-bf16
 * state. Stochastic rounding takes its 16 random bits from a counter-based hash of (seed, step,
 * element index): a pure function, so runs are bitwise reproducible and every backend that computes
 * the same fp32 value rounds it the same way.
 *
 * Stochastic rounding of an fp32 x to bf16: x = lo + f * ulp with lo, lo + ulp adjacent bf16
 * values and f = k / 65536 (the 16 bits bf16 drops); the result is lo + ulp with probability f,
 * else lo, so E[result] = x exactly. Bitwise: add 16 uniform bits r to the fp32 bit pattern and
 * truncate (the sign is separate, so this rounds the magnitude; a carry into the exponent is the
 * correct next binade). Inf and NaN are rounded to nearest instead, so a NaN stays a NaN. */
#ifndef GT_BF16_ROUND_H
#define GT_BF16_ROUND_H

#include <stdint.h>

#include "normal_hash.h"

/* The hash key of one optimizer step: distinct steps get unrelated streams. */
static inline GT_HD uint64_t gt_sr_key(uint64_t seed, uint64_t step) {
    return gt_mix64(seed ^ gt_mix64(step ^ 0x5352ull)); /* "SR": not the init streams' keys */
}

/* 16 uniform random bits for element `index` of the step keyed `key`: output `index` of a
 * splitmix64 stream seeded with key (one multiply and one finalizer per element). */
static inline GT_HD uint32_t gt_sr_bits(uint64_t key, uint64_t index) {
    return (uint32_t)(gt_mix64(key + index * 0x9E3779B97F4A7C15ull) >> 48);
}

/* bf16 bit patterns (the high 16 bits of an fp32) from fp32 bits. */
static inline GT_HD uint32_t gt_bf16_bits_rne(uint32_t u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x0040u; /* quiet NaN */
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
static inline GT_HD uint32_t gt_bf16_bits_sr(uint32_t u, uint32_t r16) {
    if ((u & 0x7f800000u) == 0x7f800000u) return gt_bf16_bits_rne(u);
    return (u + r16) >> 16;
}

#endif
