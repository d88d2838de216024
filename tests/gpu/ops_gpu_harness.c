#include "ops_gpu_harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "tests/cpu/check.h"

void harness_open(harness *h, uint64_t seed) {
    memset(h, 0, sizeof *h);
    GT_ASSERT(gt_cuda_device_count() > 0, "no CUDA device");
    h->cpu = gt_cpu_ops();
    h->gpu = gt_cuda_ops();
    h->cbe = gt_cpu_backend_create();
    h->gbe = gt_cuda_backend_create(0);
    h->rng = seed;
}

void harness_close(harness *h) {
    gt_cuda_backend_destroy(h->gbe);
    gt_cpu_backend_destroy(h->cbe);
}

/* splitmix64: small, fast, good enough for test data. */
uint64_t ops_rng_next(harness *h) {
    uint64_t z = (h->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float ops_rng_uniform(harness *h, float lo, float hi) {
    return lo + (hi - lo) * (float)((ops_rng_next(h) >> 40) * (1.0 / 16777216.0));
}

int ops_rng_int(harness *h, int lo, int hi) {
    return lo + (int)(ops_rng_next(h) % (uint64_t)(hi - lo));
}

pair pair_new(harness *h, gt_kind kind, size_t n) {
    pair p;
    p.kind = kind;
    p.n = n;
    p.c = h->cpu->alloc(h->cbe, n * h->cpu->size[kind]);
    p.g = h->gpu->alloc(h->gbe, n * h->gpu->size[kind]);
    return p;
}

void pair_set(harness *h, pair *p, const float *src) {
    float *v = gt_malloc(p->n * sizeof(float));
    for (size_t i = 0; i < p->n; i++) v[i] = p->kind == GT_ACT ? gt_round_bf16(src[i]) : src[i];
    h->cpu->upload(h->cbe, p->kind, p->c, v, p->n);
    h->gpu->upload(h->gbe, p->kind, p->g, v, p->n);
    free(v);
}

void pair_fill(harness *h, pair *p, float lo, float hi) {
    float *v = gt_malloc(p->n * sizeof(float));
    for (size_t i = 0; i < p->n; i++) v[i] = ops_rng_uniform(h, lo, hi);
    pair_set(h, p, v);
    free(v);
}

void pair_poison(harness *h, pair *p) {
    size_t bytes = p->n * h->gpu->size[p->kind];
    void *ones = gt_malloc(bytes);
    memset(ones, 0xff, bytes);
    h->gpu->upload_raw(h->gbe, p->g, ones, bytes);
    free(ones);
}

float *pair_get(harness *h, const pair *p, int gpu) {
    float *v = gt_malloc(p->n * sizeof(float));
    if (gpu)
        h->gpu->download(h->gbe, p->kind, v, p->g, p->n);
    else
        h->cpu->download(h->cbe, p->kind, v, p->c, p->n);
    return v;
}

double pair_err_range(harness *h, const pair *p, size_t off, size_t n) {
    float *g = pair_get(h, p, 1), *c = pair_get(h, p, 0);
    double e = gt_rel_err_f(g + off, c + off, n);
    free(g);
    free(c);
    return e;
}

double pair_err(harness *h, const pair *p) { return pair_err_range(h, p, 0, p->n); }

void pair_free(harness *h, pair *p) {
    h->cpu->release(h->cbe, p->c);
    h->gpu->release(h->gbe, p->g);
    p->c = p->g = NULL;
}

ipair ipair_new(harness *h, const int32_t *src, size_t n) {
    ipair p;
    p.n = n;
    p.c = h->cpu->alloc(h->cbe, n * sizeof(int32_t));
    p.g = h->gpu->alloc(h->gbe, n * sizeof(int32_t));
    h->cpu->upload_raw(h->cbe, p.c, src, n * sizeof(int32_t));
    h->gpu->upload_raw(h->gbe, p.g, src, n * sizeof(int32_t));
    return p;
}

void ipair_free(harness *h, ipair *p) {
    h->cpu->release(h->cbe, p->c);
    h->gpu->release(h->gbe, p->g);
    p->c = p->g = NULL;
}

void ops_report_header(void) {
    printf("%-26s %-40s %11s %9s  %s\n", "op", "shape", "rel_err", "tol", "result");
}

void ops_report(harness *h, const char *op, const char *shape, double err, double tol) {
    int ok = err <= tol; /* NaN fails */
    printf("%-26s %-40s %11.3e %9.1e  %s\n", op, shape, err, tol, ok ? "PASS" : "FAIL");
    fflush(stdout);
    if (ok)
        h->passed++;
    else
        h->failed++;
}
