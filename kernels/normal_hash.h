/* The counter-based normal generator of random initialization, shared by the CPU and CUDA
 * backends: element i of a stream `key` is a pure function of (key, i), so any rank can compute
 * any slice of a tensor, in any order, on any device. */
#ifndef GT_NORMAL_HASH_H
#define GT_NORMAL_HASH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define GT_HD __host__ __device__
#else
#define GT_HD
#endif

static inline GT_HD uint64_t gt_mix64(uint64_t z) { /* splitmix64's finalizer */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* normal(0, std) for element i: Box-Muller on the two 32-bit halves of one hash, in double. */
static inline GT_HD float gt_normal_at(uint64_t key, uint64_t i, float std) {
    uint64_t r = gt_mix64(key ^ gt_mix64(i));
    double u = ((double)(r >> 32) + 0.5) / 4294967296.0, v = ((double)(r & 0xffffffffu) + 0.5) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v)) * std;
}

#endif
