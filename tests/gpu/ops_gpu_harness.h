/* Harness of test_ops_gpu: tensors mirrored on the "cuda" backend and the "cpu" oracle, fresh
 * random data, error measurement, the result table. */
#ifndef GT_OPS_GPU_HARNESS_H
#define GT_OPS_GPU_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

typedef struct {
    const gt_ops *cpu, *gpu;
    gt_backend *cbe, *gbe;
    uint64_t rng;
    int passed, failed;
} harness;

/* One tensor on both backends; n elements of one gt_kind. */
typedef struct {
    void *c, *g;
    size_t n;
    gt_kind kind;
} pair;

/* int32 data (tokens, targets, positions, segment ids) on both backends. */
typedef struct {
    int32_t *c, *g;
    size_t n;
} ipair;

void harness_open(harness *h, uint64_t seed);
void harness_close(harness *h);

uint64_t ops_rng_next(harness *h);
float ops_rng_uniform(harness *h, float lo, float hi);
int ops_rng_int(harness *h, int lo, int hi); /* in [lo, hi) */

pair pair_new(harness *h, gt_kind kind, size_t n);
/* Uniform random in [lo, hi); ACT values are rounded to bf16 first so both sides see the same. */
void pair_fill(harness *h, pair *p, float lo, float hi);
/* The same n host values on both sides (rounded to bf16 first for ACT). */
void pair_set(harness *h, pair *p, const float *src);
/* GPU side to all-ones bytes (NaN in bf16 and fp32), so an element the op fails to write shows. */
void pair_poison(harness *h, pair *p);
/* ||gpu - cpu|| / ||cpu|| over all n elements, or over n elements from offset off. */
double pair_err(harness *h, const pair *p);
double pair_err_range(harness *h, const pair *p, size_t off, size_t n);
/* Host copy (float) of the GPU or the CPU side; the caller frees it. */
float *pair_get(harness *h, const pair *p, int gpu);
void pair_free(harness *h, pair *p);

ipair ipair_new(harness *h, const int32_t *src, size_t n);
void ipair_free(harness *h, ipair *p);

/* One table row: op, shape, error, tolerance, PASS/FAIL (NaN fails). */
void ops_report(harness *h, const char *op, const char *shape, double err, double tol);
void ops_report_header(void);

#endif
