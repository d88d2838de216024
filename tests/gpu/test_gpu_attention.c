/* Fused causal attention on the GPU (kernels/ops.h attention_fwd/bwd) against references.
 *
 *   test_gpu_attention           correctness table; exits non-zero on any failure
 *   test_gpu_attention --bench   TFLOP/s of the public (fast) path, Gemma shapes
 *   test_gpu_attention --small   only the cases with T <= 65 (quick; for compute-sanitizer)
 *
 * Every case draws fresh random qkv, dout and (optionally) segment ids, rounded to bf16, so both
 * sides see the same inputs. The reference is the "cpu64" backend (float64) where the CPU can
 * afford it, and for the large Gemma shapes the GPU's own simple fp32 path
 * (gt_cuda_attention_ref_*, one warp per row, itself checked against cpu64 on the small cases). The
 * backward is checked in isolation: both sides get the reference's out (rounded to bf16) and lse.
 *
 * Errors are ||gpu - ref|| / ||ref|| over out, lse, dq, dk, dv separately. Tolerances: 1e-2 for the
 * bf16 outputs (out, dq, dk, dv: P and dS are rounded to bf16 for the tensor cores, ~3e-3 expected)
 * and 1e-3 for lse (fp32). Outputs are poisoned (NaN) before each call, so an unwritten element
 * fails. The backward is run twice and must give bitwise the same dqkv (it uses no atomics).
 *
 * The public path is cuDNN's fused attention where it runs the case (kernels/cuda/attention_cudnn.h)
 * and the built-in kernels elsewhere; each line names the one that ran. tests/gpu/run.sh runs this
 * test a second time with GT_CUDNN_ATTENTION=0, so the built-in kernels stay tested everywhere.
 *
 * FLOPs convention (as FlashAttention reports): causal forward = 4 B Hq T^2 D / 2, backward = 2.5x.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_stream.h"
#include "tests/cpu/check.h"

/* The reference path (kernels/cuda/attention_ref.cu), exported for tests (gt_ops.attention_fwd/bwd). */
void gt_cuda_attention_ref_fwd(gt_backend *be, void *out, void *lse, const void *qkv,
                               const int32_t *seg, float scale, int B, int T, int Hq, int Hkv,
                               int D);
void gt_cuda_attention_ref_bwd(gt_backend *be, void *dqkv, const void *dout, const void *qkv,
                               const void *out, const void *lse, const int32_t *seg, float scale,
                               int B, int T, int Hq, int Hkv, int D);

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) GT_DIE("%s: %s", #call, cudaGetErrorString(e_));                    \
    } while (0)

#define TOL_BF16 1e-2
#define TOL_LSE 1e-3

typedef struct {
    const gt_ops *gpu, *cpu;
    gt_backend *gbe, *cbe;
    uint64_t rng;
    gt_check chk;
} ctx;

typedef struct {
    int B, T, Hq, Hkv, D, seg;
    int cpu; /* reference: 1 = cpu64, 0 = the GPU reference path */
} tcase;

static uint64_t rng_next(ctx *c) {
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(ctx *c, float lo, float hi) {
    return lo + (hi - lo) * (float)((rng_next(c) >> 40) * (1.0 / 16777216.0));
}

static float *random_bf16(ctx *c, size_t n, float amp) {
    float *v = gt_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = gt_round_bf16(rng_uniform(c, -amp, amp));
    return v;
}

/* Documents of random length (about 4 per sequence, at least 1 token); ids cycle through 5
 * values, so one id also appears in documents that are not adjacent: visibility is by id. */
static int32_t *random_seg(ctx *c, int B, int T) {
    int32_t *s = gt_malloc((size_t)B * T * sizeof(int32_t));
    double p = 4.0 / T;
    if (p > 0.3) p = 0.3;
    for (int b = 0; b < B; b++) {
        int id = (int)(rng_next(c) % 5);
        for (int t = 0; t < T; t++) {
            if (t > 0 && rng_uniform(c, 0, 1) < p) id = (id + 1) % 5;
            s[(size_t)b * T + t] = id;
        }
    }
    return s;
}

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    CK(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}
static void to_dev_bf16(ctx *c, void *dst, const float *src, size_t n) {
    c->gpu->upload(c->gbe, GT_ACT, dst, src, n);
}
static float *from_dev(ctx *c, gt_kind kind, const void *src, size_t n) {
    float *v = gt_malloc(n * sizeof(float));
    c->gpu->download(c->gbe, kind, v, src, n);
    return v;
}
static void poison(ctx *c, void *p, size_t bytes) {
    CK(cudaMemsetAsync(p, 0xff, bytes, gt_cuda_stream(c->gbe)));
}

/* Splits dqkv rows into the dq, dk, dv parts (each contiguous in the returned arrays). */
static void split_dqkv(const float *x, const tcase *k, float *dq, float *dk, float *dv) {
    const int G = k->Hq / k->Hkv, D = k->D;
    const size_t W = (size_t)(k->Hq + 2 * k->Hkv) * D, N = (size_t)k->B * k->T;
    size_t iq = 0, ik = 0, iv = 0;
    for (size_t n = 0; n < N; n++)
        for (int g = 0; g < k->Hkv; g++) {
            const float *r = x + n * W + (size_t)g * (G + 2) * D;
            memcpy(dq + iq, r, (size_t)G * D * sizeof(float));
            memcpy(dk + ik, r + (size_t)G * D, (size_t)D * sizeof(float));
            memcpy(dv + iv, r + (size_t)(G + 1) * D, (size_t)D * sizeof(float));
            iq += (size_t)G * D;
            ik += D;
            iv += D;
        }
}

/* Reference results of one case. */
typedef struct {
    float *out, *lse, *dqkv;
} refs;

/* cpu64: forward, then the backward on (out rounded to bf16, lse). */
static refs cpu_reference(ctx *c, const tcase *k, const float *qkv, const float *dout,
                          const int32_t *seg, float scale) {
    const size_t N = (size_t)k->B * k->T, nq = N * (k->Hq + 2 * k->Hkv) * k->D;
    const size_t no = N * k->Hq * k->D, nl = (size_t)k->B * k->Hq * k->T;
    const gt_ops *o = c->cpu;
    void *x = o->alloc(c->cbe, nq * o->size[GT_ACT]), *dx = o->alloc(c->cbe, nq * o->size[GT_ACT]);
    void *y = o->alloc(c->cbe, no * o->size[GT_ACT]), *dy = o->alloc(c->cbe, no * o->size[GT_ACT]);
    void *l = o->alloc(c->cbe, nl * o->size[GT_STAT]);
    o->upload(c->cbe, GT_ACT, x, qkv, nq);
    o->upload(c->cbe, GT_ACT, dy, dout, no);
    o->attention_fwd(c->cbe, y, l, x, seg, scale, k->B, k->T, k->Hq, k->Hkv, k->D);
    refs r;
    r.out = gt_malloc(no * sizeof(float));
    r.lse = gt_malloc(nl * sizeof(float));
    r.dqkv = gt_malloc(nq * sizeof(float));
    o->download(c->cbe, GT_ACT, r.out, y, no);
    o->download(c->cbe, GT_STAT, r.lse, l, nl);
    for (size_t i = 0; i < no; i++) r.out[i] = gt_round_bf16(r.out[i]);
    o->upload(c->cbe, GT_ACT, y, r.out, no);
    o->upload(c->cbe, GT_STAT, l, r.lse, nl);
    o->attention_bwd(c->cbe, dx, dy, x, y, l, seg, scale, k->B, k->T, k->Hq, k->Hkv, k->D);
    o->download(c->cbe, GT_ACT, r.dqkv, dx, nq);
    o->release(c->cbe, x);
    o->release(c->cbe, dx);
    o->release(c->cbe, y);
    o->release(c->cbe, dy);
    o->release(c->cbe, l);
    return r;
}

/* Device buffers of one case. */
typedef struct {
    void *qkv, *dout, *out, *lse, *out_in, *lse_in, *dqkv;
    int32_t *seg;
} bufs;

/* The GPU reference path on the case's device buffers. */
static refs gpu_reference(ctx *c, const tcase *k, bufs *d, float scale) {
    const size_t N = (size_t)k->B * k->T, nq = N * (k->Hq + 2 * k->Hkv) * k->D;
    const size_t no = N * k->Hq * k->D, nl = (size_t)k->B * k->Hq * k->T;
    refs r;
    gt_cuda_attention_ref_fwd(c->gbe, d->out, d->lse, d->qkv, d->seg, scale, k->B, k->T, k->Hq,
                              k->Hkv, k->D);
    r.out = from_dev(c, GT_ACT, d->out, no);
    r.lse = from_dev(c, GT_STAT, d->lse, nl);
    gt_cuda_attention_ref_bwd(c->gbe, d->dqkv, d->dout, d->qkv, d->out, d->lse, d->seg, scale, k->B,
                              k->T, k->Hq, k->Hkv, k->D);
    r.dqkv = from_dev(c, GT_ACT, d->dqkv, nq);
    return r;
}

/* Runs fwd and bwd (public path if !ref_path, else the exported reference path) and checks them. */
static void check_path(ctx *c, const tcase *k, bufs *d, const refs *r, float scale, int ref_path,
                       const char *refname) {
    const size_t N = (size_t)k->B * k->T, nq = N * (k->Hq + 2 * k->Hkv) * k->D;
    const size_t no = N * k->Hq * k->D, nl = (size_t)k->B * k->Hq * k->T;
    const int32_t *seg = k->seg ? d->seg : NULL;
    char name[160];
    const char *impl = ref_path ? "refpath"
                                : gt_cuda_attention_impl(c->gbe, seg, scale, k->B, k->T, k->Hq,
                                                         k->Hkv, k->D);
    snprintf(name, sizeof name, "%s B%d T%d Hq%d Hkv%d D%d%s vs %s", impl, k->B, k->T, k->Hq,
             k->Hkv, k->D, k->seg ? " seg" : "", refname);

    poison(c, d->out, no * 2);
    poison(c, d->lse, nl * 4);
    if (ref_path)
        gt_cuda_attention_ref_fwd(c->gbe, d->out, d->lse, d->qkv, seg, scale, k->B, k->T, k->Hq,
                                  k->Hkv, k->D);
    else
        c->gpu->attention_fwd(c->gbe, d->out, d->lse, d->qkv, seg, scale, k->B, k->T, k->Hq, k->Hkv,
                              k->D);
    float *out = from_dev(c, GT_ACT, d->out, no), *lse = from_dev(c, GT_STAT, d->lse, nl);
    const double e_out = gt_rel_err_f(out, r->out, no), e_lse = gt_rel_err_f(lse, r->lse, nl);

    to_dev_bf16(c, d->out_in, r->out, no);
    c->gpu->upload(c->gbe, GT_STAT, d->lse_in, r->lse, nl);
    uint16_t *first = gt_malloc(nq * 2), *second = gt_malloc(nq * 2);
    for (int rep = 0; rep < 2; rep++) {
        poison(c, d->dqkv, nq * 2);
        if (ref_path)
            gt_cuda_attention_ref_bwd(c->gbe, d->dqkv, d->dout, d->qkv, d->out_in, d->lse_in, seg,
                                      scale, k->B, k->T, k->Hq, k->Hkv, k->D);
        else
            c->gpu->attention_bwd(c->gbe, d->dqkv, d->dout, d->qkv, d->out_in, d->lse_in, seg,
                                  scale, k->B, k->T, k->Hq, k->Hkv, k->D);
        c->gpu->download_raw(c->gbe, rep ? second : first, d->dqkv, nq * 2);
    }
    const int same = memcmp(first, second, nq * 2) == 0;
    float *dqkv = from_dev(c, GT_ACT, d->dqkv, nq);
    const size_t nqh = N * k->Hq * k->D, nkh = N * k->Hkv * k->D;
    float *g = gt_malloc(nq * sizeof(float)), *e = gt_malloc(nq * sizeof(float));
    split_dqkv(dqkv, k, g, g + nqh, g + nqh + nkh);
    split_dqkv(r->dqkv, k, e, e + nqh, e + nqh + nkh);
    const double e_dq = gt_rel_err_f(g, e, nqh), e_dk = gt_rel_err_f(g + nqh, e + nqh, nkh);
    const double e_dv = gt_rel_err_f(g + nqh + nkh, e + nqh + nkh, nkh);

    const int ok = e_out <= TOL_BF16 && e_lse <= TOL_LSE && e_dq <= TOL_BF16 && e_dk <= TOL_BF16 &&
                   e_dv <= TOL_BF16 && same;
    printf("%-4s %-52s out %.2e lse %.2e dq %.2e dk %.2e dv %.2e %s\n", ok ? "ok" : "FAIL", name,
           e_out, e_lse, e_dq, e_dk, e_dv, same ? "det" : "NONDET");
    fflush(stdout);
    gt_check_true(&c->chk, ok, "%s", name);
    free(out);
    free(lse);
    free(first);
    free(second);
    free(dqkv);
    free(g);
    free(e);
}

static void run_case(ctx *c, const tcase *k) {
    const size_t N = (size_t)k->B * k->T, nq = N * (k->Hq + 2 * k->Hkv) * k->D;
    const size_t no = N * k->Hq * k->D, nl = (size_t)k->B * k->Hq * k->T;
    const float scale = 1.0f / sqrtf((float)k->D);
    float *qkv = random_bf16(c, nq, 2.5f), *dout = random_bf16(c, no, 1.0f);
    int32_t *seg = k->seg ? random_seg(c, k->B, k->T) : NULL;
    bufs d;
    d.qkv = dev_alloc(nq * 2);
    d.dqkv = dev_alloc(nq * 2);
    d.dout = dev_alloc(no * 2);
    d.out = dev_alloc(no * 2);
    d.out_in = dev_alloc(no * 2);
    d.lse = dev_alloc(nl * 4);
    d.lse_in = dev_alloc(nl * 4);
    d.seg = seg ? dev_alloc(N * 4) : NULL;
    to_dev_bf16(c, d.qkv, qkv, nq);
    to_dev_bf16(c, d.dout, dout, no);
    if (seg) {
        c->gpu->upload_raw(c->gbe, d.seg, seg, N * 4);
        c->gpu->attention_segments(c->gbe, d.seg, seg, k->B, k->T); /* as the model does */
    }

    refs r = k->cpu ? cpu_reference(c, k, qkv, dout, seg, scale) : gpu_reference(c, k, &d, scale);
    check_path(c, k, &d, &r, scale, 0, k->cpu ? "cpu64" : "refpath");
    /* Where the public call takes the fast path, also check the reference path against cpu64. */
    if (k->cpu && (k->D == 64 || k->D == 128 || k->D == 256))
        check_path(c, k, &d, &r, scale, 1, "cpu64");

    free(r.out);
    free(r.lse);
    free(r.dqkv);
    CK(cudaFree(d.qkv));
    CK(cudaFree(d.dqkv));
    CK(cudaFree(d.dout));
    CK(cudaFree(d.out));
    CK(cudaFree(d.out_in));
    CK(cudaFree(d.lse));
    CK(cudaFree(d.lse_in));
    if (d.seg) CK(cudaFree(d.seg));
    free(qkv);
    free(dout);
    free(seg);
}

/* small: only T <= 65 (for compute-sanitizer runs). */
static int correctness(ctx *c, int small) {
    static const int heads[3][2] = {{4, 4}, {4, 2}, {4, 1}}; /* MHA, GQA, MQA */
    static const int dims[4] = {24, 64, 128, 256};
    static const int lens[4] = {1, 7, 65, 300};
    for (int di = 0; di < 4; di++)
        for (int hi = 0; hi < 3; hi++)
            for (int ti = 0; ti < (small ? 3 : 4); ti++)
                for (int sg = 0; sg < 2; sg++) {
                    tcase k = {2, lens[ti], heads[hi][0], heads[hi][1], dims[di], sg, 1};
                    run_case(c, &k);
                }
    static const tcase extra[] = {
        {1, 65, 4, 1, 72, 1, 1},   /* another head dim without a fast path */
        {1, 700, 6, 2, 128, 1, 1}, /* G = 3: head splits of the dK/dV kernel */
        {2, 2048, 2, 1, 64, 1, 1}, /* T = 2048 against cpu64 */
        {2, 2048, 2, 2, 128, 0, 1}, {2, 2048, 8, 1, 256, 0, 0},   /* Gemma-2B attention */
        {2, 2048, 8, 1, 256, 1, 0}, {2, 2048, 16, 16, 256, 0, 0}, /* Gemma-7B attention */
        {2, 4096, 8, 4, 128, 1, 0}, /* G = 2 with no head split: heads looped in one block */
        {1, 8192, 8, 1, 256, 0, 0},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0] && !small; i++) run_case(c, &extra[i]);
    return gt_check_done(&c->chk, "test_gpu_attention");
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median over REPS calls of the milliseconds one call of `what` takes (0 fwd, 1 bwd, 2 fwd + bwd),
 * after WARM calls. The calls are queued back to back, each between two events, and the stream is
 * synchronized once at the end, as in a training step (no host round trip between calls). */
static float time_ms(ctx *c, gt_backend *be, int what, const tcase *k, bufs *d, float scale) {
    enum { WARM = 3, REPS = 20 };
    cudaStream_t st = gt_cuda_stream(be);
    cudaEvent_t e0[REPS], e1[REPS];
    float ms[REPS];
    for (int i = 0; i < REPS; i++) {
        CK(cudaEventCreate(&e0[i]));
        CK(cudaEventCreate(&e1[i]));
    }
    for (int i = 0; i < WARM + REPS; i++) {
        if (i >= WARM) CK(cudaEventRecord(e0[i - WARM], st));
        if (what != 1)
            c->gpu->attention_fwd(be, d->out, d->lse, d->qkv, NULL, scale, k->B, k->T, k->Hq,
                                  k->Hkv, k->D);
        if (what != 0)
            c->gpu->attention_bwd(be, d->dqkv, d->dout, d->qkv, d->out, d->lse, NULL, scale,
                                  k->B, k->T, k->Hq, k->Hkv, k->D);
        if (i >= WARM) CK(cudaEventRecord(e1[i - WARM], st));
    }
    CK(cudaStreamSynchronize(st));
    for (int i = 0; i < REPS; i++) {
        CK(cudaEventElapsedTime(&ms[i], e0[i], e1[i]));
        CK(cudaEventDestroy(e0[i]));
        CK(cudaEventDestroy(e1[i]));
    }
    qsort(ms, REPS, sizeof ms[0], cmp_float);
    return 0.5f * (ms[REPS / 2 - 1] + ms[REPS / 2]);
}

/* A second CUDA backend with one environment switch set while it is created (the backend reads
 * GT_CUDNN_* once, at creation). */
static gt_backend *backend_with(const char *var, const char *value) {
    setenv(var, value, 1);
    gt_backend *be = gt_cuda_backend_create(0);
    unsetenv(var);
    return be;
}

/* Every shape timed in the same run by each attention implementation: cuDNN with a deterministic
 * backward (the default), cuDNN free to pick non-deterministic plans, and the built-in kernels. */
static int bench(ctx *c) {
    static const tcase shapes[] = {
        {2, 2048, 8, 1, 256, 0, 0}, /* Gemma-2B */
        {1, 8192, 8, 1, 256, 0, 0},
        {2, 2048, 16, 16, 256, 0, 0}, /* Gemma-7B */
        {2, 2048, 16, 16, 128, 0, 0},
    };
    gt_backend *impl[3] = {c->gbe, backend_with("GT_CUDNN_DETERMINISTIC", "0"),
                           backend_with("GT_CUDNN_ATTENTION", "0")};
    static const char *impl_name[3] = {"cudnn-det", "cudnn-nondet", "builtin"};
    printf("%-28s %-13s %10s %10s %10s %12s %12s %14s\n", "shape", "impl", "fwd ms", "bwd ms",
           "f+b ms", "fwd TFLOP/s", "bwd TFLOP/s", "f+b TFLOP/s");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const tcase *k = &shapes[i];
        const size_t N = (size_t)k->B * k->T, nq = N * (k->Hq + 2 * k->Hkv) * k->D;
        const size_t no = N * k->Hq * k->D, nl = (size_t)k->B * k->Hq * k->T;
        const float scale = 1.0f / sqrtf((float)k->D);
        float *qkv = random_bf16(c, nq, 2.5f), *dout = random_bf16(c, no, 1.0f);
        bufs d;
        memset(&d, 0, sizeof d);
        d.qkv = dev_alloc(nq * 2);
        d.dqkv = dev_alloc(nq * 2);
        d.dout = dev_alloc(no * 2);
        d.out = dev_alloc(no * 2);
        d.lse = dev_alloc(nl * 4);
        to_dev_bf16(c, d.qkv, qkv, nq);
        to_dev_bf16(c, d.dout, dout, no);
        const double f = 4.0 * k->B * k->Hq * (double)k->T * k->T * k->D / 2;
        char name[64];
        snprintf(name, sizeof name, "B%d T%d Hq%d Hkv%d D%d", k->B, k->T, k->Hq, k->Hkv, k->D);
        for (int m = 0; m < 3; m++) {
            const char *ran = gt_cuda_attention_impl(impl[m], NULL, scale, k->B, k->T, k->Hq, k->Hkv,
                                                     k->D);
            const float tf = time_ms(c, impl[m], 0, k, &d, scale);
            const float tb = time_ms(c, impl[m], 1, k, &d, scale);
            const float tfb = time_ms(c, impl[m], 2, k, &d, scale);
            printf("%-28s %-13s %10.3f %10.3f %10.3f %12.1f %12.1f %14.1f%s\n", name,
                   impl_name[m], tf, tb, tfb, f / tf * 1e-9, 2.5 * f / tb * 1e-9,
                   3.5 * f / tfb * 1e-9, strcmp(ran, "builtin") || m == 2 ? "" : " (builtin ran)");
        }
        CK(cudaFree(d.qkv));
        CK(cudaFree(d.dqkv));
        CK(cudaFree(d.dout));
        CK(cudaFree(d.out));
        CK(cudaFree(d.lse));
        free(qkv);
        free(dout);
    }
    gt_cuda_backend_destroy(impl[1]);
    gt_cuda_backend_destroy(impl[2]);
    return 0;
}

int main(int argc, char **argv) {
    if (gt_cuda_device_count() == 0) {
        printf("test_gpu_attention: no CUDA device, nothing to do\n");
        return 0;
    }
    ctx c;
    memset(&c, 0, sizeof c);
    c.gpu = gt_cuda_ops();
    c.cpu = gt_cpu64_ops();
    c.gbe = gt_cuda_backend_create(0);
    c.cbe = gt_cpu_backend_create();
    c.rng = 0x5eed5eedull;
    const int bench_mode = argc > 1 && strcmp(argv[1], "--bench") == 0;
    const int small = argc > 1 && strcmp(argv[1], "--small") == 0;
    const int rc = bench_mode ? bench(&c) : correctness(&c, small);
    gt_cuda_backend_destroy(c.gbe);
    gt_cpu_backend_destroy(c.cbe);
    return rc;
}
