/* Shared by the CPU tests of the fused op + FP8 cast ops (test_geglu_fp8.c, test_rmsnorm_fp8.c):
 * a backend with a random stream, poisoned outputs (so an element a fused op does not write shows),
 * byte and bit comparisons, and the output combinations every fused op is called with. */
#ifndef GT_TEST_FUSED_FP8_HARNESS_H
#define GT_TEST_FUSED_FP8_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

#define POISON 0xa5

typedef struct {
    const gt_ops *ops;
    gt_backend *be;
    uint64_t rng;
} env;

static inline float uni(env *e, float lo, float hi) {
    e->rng = e->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((e->rng >> 40) * (1.0 / 16777216.0));
}

/* n ACT values uniform in [lo, hi), each times 2^k / div for k uniform in 0..spread-1. */
static inline void *rand_act_spread(env *e, size_t n, float lo, float hi, int spread, float div) {
    float *f = gt_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = uni(e, lo, hi) * (float)(1 << (int)uni(e, 0, spread - 0.01f)) / div;
    void *d = e->ops->alloc(e->be, n * e->ops->size[GT_ACT]);
    e->ops->upload(e->be, GT_ACT, d, f, n);
    free(f);
    return d;
}

static inline void *poisoned(env *e, size_t bytes) {
    void *p = e->ops->alloc(e->be, bytes);
    memset(p, POISON, bytes); /* host memory on the CPU backends */
    return p;
}

static inline int same(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static inline uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Which outputs a fused call writes: the ACT output, the FP8 one, its transpose (amax always). */
typedef struct {
    int act, q, qt;
    const char *name;
} variant;

static const variant VARIANTS[] = {
    {1, 1, 1, "all outputs"}, {0, 1, 1, "act NULL"}, {0, 1, 0, "fp8 only"},
    {0, 0, 1, "transpose only"}, {0, 0, 0, "amax only"}, {1, 0, 0, "act + amax"},
};

#endif
