#include "ops_gpu_bench.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_stream.h"
#include "kernels/cuda/lt_bench.h"

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) GT_DIE("%s: %s", #call, cudaGetErrorString(e_));                    \
    } while (0)

/* Gemma-2B, one micro-batch of B x T = 4096 tokens. */
enum {
    NT = 4096,
    CH = 2048,
    FF = 16384,
    HQ = 8,
    HKV = 1,
    HD = 256,
    VOC = 256000,
    BB = 2,
    TT = 2048
};
#define QKV ((HQ + 2 * HKV) * HD)
#define OPT_N ((size_t)1 << 27) /* optimizer elements per call */
#define COPY_BYTES ((size_t)1 << 30)
#define WARMUP 3
#define REPS 20
#define PEAK_BW 3.35e12   /* H100 SXM HBM3, bytes/s */
#define PEAK_FLOPS 989e12 /* H100 SXM dense bf16 */
#define POOL ((size_t)1 << 22)
#define FLUSH_BYTES ((size_t)256 << 20) /* written before each timed run: evicts L2 (50 MB) */

typedef enum {
    OP_COPY,
    OP_ADD,
    OP_ACCUM,
    OP_EMBED_FWD,
    OP_EMBED_BWD,
    OP_NORM_FWD,
    OP_NORM_BWD,
    OP_ADD_NORM_FWD,
    OP_QKV_FWD,
    OP_QKV_BWD,
    OP_O_FWD,
    OP_O_BWD,
    OP_FC1_FWD,
    OP_FC1_BWD,
    OP_FC2_FWD,
    OP_FC2_BWD,
    OP_LM_FWD,
    OP_LM_BWD,
    OP_ROPE_FWD,
    OP_ROPE_BWD,
    OP_ATT_FWD,
    OP_ATT_BWD,
    OP_GEGLU_FWD,
    OP_GEGLU_BWD,
    OP_GEGLU_ERF_FWD,
    OP_GEGLU_ERF_BWD,
    OP_CE_PARTIAL,
    OP_CE_FINISH,
    OP_CE_BWD,
    OP_SUMSQ,
    OP_ADAMW,
    OP_ADAMW_BF16M,
    OP_ADAMW_BF16,
    OP_COUNT
} bench_op;

typedef struct {
    const gt_ops *o;
    gt_backend *be;
    uint16_t *pool16; /* random bf16 in [-1, 1) */
    float *pool32;    /* random fp32 in [-1, 1) */
    void *a, *b, *c;  /* [N, C] bf16 */
    void *wte, *dwte; /* [V, C] bf16, fp32: embedding and tied lm_head */
    int32_t *tok, *pos, *tgt;
    void *nw, *rstd, *ndw;
    void *qkv, *dqkv, *att, *datt, *lse;
    void *w_qkv, *w_o, *w_fc1, *w_fc2, *dw_qkv, *dw_o, *dw_fc1, *dw_fc2;
    void *fa, *fda, *fh,
        *fdh; /* fc1 output [N, 2F] and its grad, GeGLU output [N, F] and its grad */
    void *logits, *part, *clse, *loss;
    void *param, *master, *m, *v, *grad, *sumsq;
    void *copy_src, *copy_dst;
    void *flush;
} bench;

typedef struct {
    const char *name, *shape;
    double bytes, flops; /* fewest bytes moved, floating-point operations */
} op_info;

#define GEMM_QKV (2.0 * NT * CH * QKV)
#define GEMM_O (2.0 * NT * HQ * HD * CH)
#define GEMM_FC1 (2.0 * NT * CH * 2.0 * FF)
#define GEMM_FC2 (2.0 * NT * FF * CH)
#define GEMM_LM (2.0 * NT * CH * (double)VOC)
/* Causal: half of the 4 B H T^2 D of the two products; backward does 2.5 times the forward. */
#define ATT_FWD (2.0 * BB * HQ * (double)TT * TT * HD)

static const op_info INFO[OP_COUNT] = {
    [OP_COPY] = {"copy d2d (HBM ceiling)", "1 GiB", 2.0 * COPY_BYTES, 0},
    [OP_ADD] = {"add", "N*C", 3.0 * NT *CH * 2, 0},
    [OP_ACCUM] = {"accumulate", "N*C", 3.0 * NT *CH * 2, 0},
    [OP_EMBED_FWD] = {"embed_fwd", "N=4096 C=2048", 2.0 * NT *CH * 2, 0},
    [OP_EMBED_BWD] = {"embed_bwd", "N=4096 C=2048 V=256000", NT *CH *(2.0 + 8.0), 0},
    [OP_NORM_FWD] = {"rmsnorm_fwd", "N=4096 C=2048", 2.0 * NT *CH * 2, 0},
    [OP_NORM_BWD] = {"rmsnorm_bwd", "N=4096 C=2048", 4.0 * NT *CH * 2, 0},
    [OP_ADD_NORM_FWD] = {"add_rmsnorm_fwd", "N=4096 C=2048", 4.0 * NT *CH * 2, 0},
    [OP_QKV_FWD] = {"matmul_fwd qkv", "4096x2048 -> 2560", 0, GEMM_QKV},
    [OP_QKV_BWD] = {"matmul_bwd qkv", "dx + dW", 0, 2 * GEMM_QKV},
    [OP_O_FWD] = {"matmul_fwd o", "4096x2048 -> 2048", 0, GEMM_O},
    [OP_O_BWD] = {"matmul_bwd o", "dx + dW", 0, 2 * GEMM_O},
    [OP_FC1_FWD] = {"matmul_fwd fc1", "4096x2048 -> 32768", 0, GEMM_FC1},
    [OP_FC1_BWD] = {"matmul_bwd fc1", "dx + dW", 0, 2 * GEMM_FC1},
    [OP_FC2_FWD] = {"matmul_fwd fc2", "4096x16384 -> 2048", 0, GEMM_FC2},
    [OP_FC2_BWD] = {"matmul_bwd fc2", "dx + dW", 0, 2 * GEMM_FC2},
    [OP_LM_FWD] = {"matmul_fwd lm_head", "4096x2048 -> 256000", 0, GEMM_LM},
    [OP_LM_BWD] = {"matmul_bwd lm_head", "dx + dW", 0, 2 * GEMM_LM},
    [OP_ROPE_FWD] = {"rope_fwd", "N=4096 Hq=8 Hkv=1 D=256", 2.0 * NT *(HQ + HKV) * HD * 2, 0},
    [OP_ROPE_BWD] = {"rope_bwd", "N=4096 Hq=8 Hkv=1 D=256", 2.0 * NT *(HQ + HKV) * HD * 2, 0},
    [OP_ATT_FWD] = {"attention_fwd", "B=2 T=2048 Hq=8 Hkv=1 D=256", 0, ATT_FWD},
    [OP_ATT_BWD] = {"attention_bwd", "B=2 T=2048 Hq=8 Hkv=1 D=256", 0, 2.5 * ATT_FWD},
    [OP_GEGLU_FWD] = {"geglu_fwd tanh", "N=4096 F=16384", 3.0 * NT *FF * 2, 0},
    [OP_GEGLU_BWD] = {"geglu_bwd tanh", "N=4096 F=16384", 5.0 * NT *FF * 2, 0},
    [OP_GEGLU_ERF_FWD] = {"geglu_fwd erf", "N=4096 F=16384", 3.0 * NT *FF * 2, 0},
    [OP_GEGLU_ERF_BWD] = {"geglu_bwd erf", "N=4096 F=16384", 5.0 * NT *FF * 2, 0},
    [OP_CE_PARTIAL] = {"ce_partial", "N=4096 V=256000", (double)NT *VOC * 2, 0},
    [OP_CE_FINISH] = {"ce_finish", "N=4096 tp=1", NT * 4.0 * 5, 0},
    [OP_CE_BWD] = {"ce_backward (in place)", "N=4096 V=256000", 2.0 * NT *VOC * 2, 0},
    [OP_SUMSQ] = {"grad_sumsq", "n=2^27", 4.0 * OPT_N, 0},
    [OP_ADAMW] = {"adamw (fp32 master)", "n=2^27", 30.0 * OPT_N, 0},
    /* optim.state bf16_moments and bf16 (bytes per element: kernels/cuda/optimizer.cu); their
     * moments use the first halves of the fp32 buffers */
    [OP_ADAMW_BF16M] = {"adamw (bf16 moments)", "n=2^27", 22.0 * OPT_N, 0},
    [OP_ADAMW_BF16] = {"adamw (pure bf16, SR)", "n=2^27", 16.0 * OPT_N, 0},
};

static void run_op(bench *b, bench_op op) {
    const gt_ops *o = b->o;
    gt_backend *be = b->be;
    const float scale = 45.25f, theta = 10000.0f, att_scale = 0.0625f;
    gt_adamw_args args = {1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, GT_OPT_FP32, 0, 0};
    switch (op) {
    case OP_COPY: o->copy(be, b->copy_dst, b->copy_src, COPY_BYTES); break;
    case OP_ADD: o->add(be, b->c, b->a, b->b, (size_t)NT * CH); break;
    case OP_ACCUM: o->accumulate(be, b->c, b->a, (size_t)NT * CH); break;
    case OP_EMBED_FWD: o->embed_fwd(be, b->a, b->tok, b->wte, scale, 0, VOC, NT, CH); break;
    case OP_EMBED_BWD: o->embed_bwd(be, b->dwte, b->a, b->tok, scale, 0, VOC, NT, CH, 0); break;
    case OP_NORM_FWD: o->rmsnorm_fwd(be, b->b, b->rstd, b->a, b->nw, 1e-6f, NT, CH); break;
    case OP_NORM_BWD: o->rmsnorm_bwd(be, b->c, b->ndw, b->b, b->a, b->nw, b->rstd, NT, CH); break;
    case OP_ADD_NORM_FWD:
        o->add_rmsnorm_fwd(be, b->c, b->b, b->rstd, b->a, b->c, b->nw, 1e-6f, NT, CH);
        break;
    case OP_QKV_FWD: o->matmul_fwd(be, b->qkv, b->a, b->w_qkv, NT, CH, QKV); break;
    case OP_QKV_BWD:
        o->matmul_bwd(be, b->b, b->dw_qkv, b->dqkv, b->a, b->w_qkv, NT, CH, QKV);
        break;
    case OP_O_FWD: o->matmul_fwd(be, b->b, b->att, b->w_o, NT, HQ * HD, CH); break;
    case OP_O_BWD:
        o->matmul_bwd(be, b->datt, b->dw_o, b->b, b->att, b->w_o, NT, HQ * HD, CH);
        break;
    case OP_FC1_FWD: o->matmul_fwd(be, b->fa, b->a, b->w_fc1, NT, CH, 2 * FF); break;
    case OP_FC1_BWD:
        o->matmul_bwd(be, b->b, b->dw_fc1, b->fda, b->a, b->w_fc1, NT, CH, 2 * FF);
        break;
    case OP_FC2_FWD: o->matmul_fwd(be, b->b, b->fh, b->w_fc2, NT, FF, CH); break;
    case OP_FC2_BWD: o->matmul_bwd(be, b->fdh, b->dw_fc2, b->c, b->fh, b->w_fc2, NT, FF, CH); break;
    case OP_LM_FWD: o->matmul_fwd(be, b->logits, b->a, b->wte, NT, CH, VOC); break;
    case OP_LM_BWD: o->matmul_bwd(be, b->b, b->dwte, b->logits, b->a, b->wte, NT, CH, VOC); break;
    case OP_ROPE_FWD: o->rope_fwd(be, b->qkv, b->pos, theta, NT, HQ, HKV, HD); break;
    case OP_ROPE_BWD: o->rope_bwd(be, b->dqkv, b->pos, theta, NT, HQ, HKV, HD); break;
    case OP_ATT_FWD:
        o->attention_fwd(be, b->att, b->lse, b->qkv, NULL, att_scale, BB, TT, HQ, HKV, HD);
        break;
    case OP_ATT_BWD:
        o->attention_bwd(be, b->dqkv, b->datt, b->qkv, b->att, b->lse, NULL, att_scale, BB, TT, HQ,
                         HKV, HD);
        break;
    case OP_GEGLU_FWD: o->geglu_fwd(be, b->fh, b->fa, GT_GELU_TANH, NT, FF); break;
    case OP_GEGLU_BWD: o->geglu_bwd(be, b->fda, b->fdh, b->fa, GT_GELU_TANH, NT, FF); break;
    case OP_GEGLU_ERF_FWD: o->geglu_fwd(be, b->fh, b->fa, GT_GELU_ERF, NT, FF); break;
    case OP_GEGLU_ERF_BWD: o->geglu_bwd(be, b->fda, b->fdh, b->fa, GT_GELU_ERF, NT, FF); break;
    case OP_CE_PARTIAL: o->ce_partial(be, b->part, b->logits, b->tgt, 0, VOC, NT); break;
    case OP_CE_FINISH: o->ce_finish(be, b->clse, b->loss, b->part, b->tgt, 1, NT); break;
    case OP_CE_BWD:
        o->ce_backward(be, b->logits, b->logits, b->tgt, b->clse, 1.0f / NT, 0, VOC, NT);
        break;
    case OP_SUMSQ: o->grad_sumsq(be, b->sumsq, b->grad, OPT_N); break;
    case OP_ADAMW: o->adamw(be, b->param, b->master, b->m, b->v, b->grad, OPT_N, &args); break;
    case OP_ADAMW_BF16M:
        args.state = GT_OPT_BF16_MOMENTS;
        o->adamw(be, b->param, b->master, b->m, b->v, b->grad, OPT_N, &args);
        break;
    case OP_ADAMW_BF16:
        args.state = GT_OPT_BF16;
        o->adamw(be, b->param, NULL, b->m, b->v, b->grad, OPT_N, &args);
        break;
    case OP_COUNT: break;
    }
}

/* Device buffer of n elements of `kind`, filled from the random pools (never zeros). */
static void *buf(bench *b, gt_kind kind, size_t n) {
    size_t es = b->o->size[kind], bytes = n * es;
    char *p = b->o->alloc(b->be, bytes);
    const void *src = kind == GT_ACT ? (const void *)b->pool16 : (const void *)b->pool32;
    for (size_t off = 0, k = 0; off < bytes; off += POOL * es, k++) {
        size_t len = bytes - off < POOL * es ? bytes - off : POOL * es;
        size_t shift = (k * 7919 % 64) * es; /* vary the pattern from chunk to chunk */
        b->o->upload_raw(b->be, p + off, (const char *)src + shift, len); /* pool has 64 spare */
    }
    return p;
}

static int32_t *ibuf(bench *b, const int32_t *src, size_t n) {
    int32_t *p = b->o->alloc(b->be, n * sizeof(int32_t));
    b->o->upload_raw(b->be, p, src, n * sizeof(int32_t));
    return p;
}

static void setup(bench *b, harness *h) {
    b->o = h->gpu;
    b->be = h->gbe;
    b->pool16 = gt_malloc((POOL + 64) * sizeof(uint16_t));
    b->pool32 = gt_malloc((POOL + 64) * sizeof(float));
    for (size_t i = 0; i < POOL + 64; i++) {
        b->pool32[i] = ops_rng_uniform(h, -1, 1);
        b->pool16[i] = gt_f32_to_bf16(b->pool32[i]);
    }
    int32_t *t = gt_malloc(NT * sizeof *t);
    for (int i = 0; i < NT; i++) t[i] = ops_rng_int(h, 0, VOC);
    b->tok = ibuf(b, t, NT);
    for (int i = 0; i < NT; i++) t[i] = ops_rng_int(h, 0, 10) == 0 ? -100 : ops_rng_int(h, 0, VOC);
    b->tgt = ibuf(b, t, NT);
    for (int i = 0; i < NT; i++) t[i] = i % TT;
    b->pos = ibuf(b, t, NT);
    free(t);
    size_t nc = (size_t)NT * CH;
    b->a = buf(b, GT_ACT, nc), b->b = buf(b, GT_ACT, nc), b->c = buf(b, GT_ACT, nc);
    b->wte = buf(b, GT_ACT, (size_t)VOC * CH), b->dwte = buf(b, GT_GRAD, (size_t)VOC * CH);
    b->nw = buf(b, GT_ACT, CH), b->rstd = buf(b, GT_STAT, NT), b->ndw = buf(b, GT_GRAD, CH);
    b->qkv = buf(b, GT_ACT, (size_t)NT * QKV), b->dqkv = buf(b, GT_ACT, (size_t)NT * QKV);
    b->att = buf(b, GT_ACT, (size_t)NT * HQ * HD), b->datt = buf(b, GT_ACT, (size_t)NT * HQ * HD);
    b->lse = buf(b, GT_STAT, (size_t)NT * HQ);
    b->w_qkv = buf(b, GT_ACT, (size_t)QKV * CH), b->dw_qkv = buf(b, GT_GRAD, (size_t)QKV * CH);
    b->w_o = buf(b, GT_ACT, (size_t)CH * HQ * HD), b->dw_o = buf(b, GT_GRAD, (size_t)CH * HQ * HD);
    b->w_fc1 = buf(b, GT_ACT, (size_t)2 * FF * CH),
    b->dw_fc1 = buf(b, GT_GRAD, (size_t)2 * FF * CH);
    b->w_fc2 = buf(b, GT_ACT, (size_t)CH * FF), b->dw_fc2 = buf(b, GT_GRAD, (size_t)CH * FF);
    b->fa = buf(b, GT_ACT, (size_t)NT * 2 * FF), b->fda = buf(b, GT_ACT, (size_t)NT * 2 * FF);
    b->fh = buf(b, GT_ACT, (size_t)NT * FF), b->fdh = buf(b, GT_ACT, (size_t)NT * FF);
    b->logits = buf(b, GT_ACT, (size_t)NT * VOC), b->part = buf(b, GT_STAT, (size_t)NT * 3);
    b->clse = buf(b, GT_STAT, NT), b->loss = buf(b, GT_STAT, 1);
    b->param = buf(b, GT_ACT, OPT_N), b->master = buf(b, GT_GRAD, OPT_N);
    b->m = buf(b, GT_GRAD, OPT_N), b->grad = buf(b, GT_GRAD, OPT_N);
    b->v = b->o->alloc(b->be, OPT_N * sizeof(float)); /* second moments must be >= 0: zeros */
    b->sumsq = buf(b, GT_STAT, 1);
    b->copy_src = buf(b, GT_ACT, COPY_BYTES / 2), b->copy_dst = b->o->alloc(b->be, COPY_BYTES);
    b->flush = b->o->alloc(b->be, FLUSH_BYTES);
    b->o->sync(b->be);
}

static void teardown(bench *b) {
    void *all[] = {b->tok,    b->tgt,   b->pos,    b->a,        b->b,        b->c,      b->wte,
                   b->dwte,   b->nw,    b->rstd,   b->ndw,      b->qkv,      b->dqkv,   b->att,
                   b->datt,   b->lse,   b->w_qkv,  b->dw_qkv,   b->w_o,      b->dw_o,   b->w_fc1,
                   b->dw_fc1, b->w_fc2, b->dw_fc2, b->fa,       b->fda,      b->fh,     b->fdh,
                   b->logits, b->part,  b->clse,   b->loss,     b->param,    b->master, b->m,
                   b->v,      b->grad,  b->sumsq,  b->copy_src, b->copy_dst, b->flush};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) b->o->release(b->be, all[i]);
    free(b->pool16);
    free(b->pool32);
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, c = *(const float *)y;
    return (a > c) - (a < c);
}

typedef void (*bench_fn)(bench *b, const void *ctx);

/* Median milliseconds of REPS runs of fn, each between two events on the backend's stream and each
 * after a write of FLUSH_BYTES, so no input is still in L2 from the run before (a [4096, 2048]
 * bf16 tensor is 16 MiB: several of them would otherwise stay in the 50 MB L2). */
static double time_fn(bench *b, bench_fn fn, const void *ctx) {
    cudaStream_t s = gt_cuda_stream(b->be);
    cudaEvent_t e0, e1;
    float t[REPS];
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int i = 0; i < WARMUP; i++) fn(b, ctx);
    for (int i = 0; i < REPS; i++) {
        CK(cudaMemsetAsync(b->flush, i & 0xff, FLUSH_BYTES, s));
        CK(cudaEventRecord(e0, s));
        fn(b, ctx);
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[i], e0, e1));
    }
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    qsort(t, REPS, sizeof t[0], cmp_float);
    return 0.5 * (t[REPS / 2 - 1] + t[REPS / 2]);
}

static void run_table_op(bench *b, const void *ctx) { run_op(b, *(const bench_op *)ctx); }

static double time_op(bench *b, bench_op op) { return time_fn(b, run_table_op, &op); }

/* One decode GEMM of Gemma-2B at one row (batch-1 decode): y[1,OC] = x[1,IC] W^T, the first row of
 * the benchmark's activations. lt: cuBLASLt's plan for the same GEMM, as matmul_fwd built it before
 * the GEMV took N <= 8 (lt_bench.h: the same descriptor, the heuristic's first algorithm). */
typedef struct {
    const char *name, *shape;
    int IC, OC;
    void *y;
    const void *x, *w;
    gt_lt_bench *lt;
} dec_gemm;

static void run_dec_gemv(bench *b, const void *ctx) {
    const dec_gemm *d = ctx;
    b->o->matmul_fwd(b->be, d->y, d->x, d->w, 1, d->IC, d->OC);
}

static void run_dec_lt(bench *b, const void *ctx) {
    const dec_gemm *d = ctx;
    (void)b; /* the plan holds its backend */
    int st = gt_lt_bench_run(d->lt, -1);
    if (st) GT_DIE("cuBLASLt refused the decode GEMM %s (%s): status %d", d->name, d->shape, st);
}

/* The decode GEMMs at N = 1: matmul_fwd (the GEMV kernel) against cuBLASLt's plan, each read
 * from HBM (L2 flushed as for every op); GB/s counts W, x and y once. */
static void bench_decode(bench *b) {
    dec_gemm g[] = {
        {"gemv N=1 qkv", "1x2048 -> 2560", CH, QKV, b->qkv, b->a, b->w_qkv, NULL},
        {"gemv N=1 o", "1x2048 -> 2048", HQ * HD, CH, b->b, b->att, b->w_o, NULL},
        {"gemv N=1 fc1", "1x2048 -> 32768", CH, 2 * FF, b->fa, b->a, b->w_fc1, NULL},
        {"gemv N=1 fc2", "1x16384 -> 2048", FF, CH, b->b, b->fh, b->w_fc2, NULL},
        {"gemv N=1 lm_head", "1x2048 -> 256000", CH, VOC, b->logits, b->a, b->wte, NULL},
    };
    printf("decode GEMMs, one row: matmul_fwd (GEMV) against cuBLASLt's plan for the same GEMM\n");
    printf("%-24s %-30s %9s %9s %9s %9s %8s\n", "op", "shape", "gemv us", "GB/s", "cublas us", "GB/s",
           "speedup");
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        dec_gemm *d = &g[i];
        double bytes = 2.0 * ((double)d->IC * d->OC + d->IC + d->OC);
        double ms = time_fn(b, run_dec_gemv, d);
        d->lt = gt_cuda_bf16_lt_bench(b->be, GT_LT_FPROP, d->y, d->x, d->w, 1, d->IC, d->OC, 1);
        double lt = time_fn(b, run_dec_lt, d);
        gt_lt_bench_destroy(d->lt);
        printf("%-24s %-30s %9.2f %9.1f %9.2f %9.1f %7.2fx\n", d->name, d->shape, ms * 1e3,
               bytes / (ms * 1e-3) / 1e9, lt * 1e3, bytes / (lt * 1e-3) / 1e9, lt / ms);
        fflush(stdout);
    }
}

int ops_gpu_bench(harness *h) {
    bench b;
    setup(&b, h);
    printf("test_ops_gpu --bench: median of %d after %d warm-ups, L2 flushed before each; "
           "roofline H100 SXM %.2f TB/s, %.0f TFLOP/s bf16 dense\n",
           REPS, WARMUP, PEAK_BW / 1e12, PEAK_FLOPS / 1e12);
    printf("%-24s %-30s %9s %9s %9s %7s\n", "op", "shape", "ms", "GB/s", "TFLOP/s", "%roof");
    for (int op = 0; op < OP_COUNT; op++) {
        double ms = time_op(&b, (bench_op)op), s = ms * 1e-3;
        const op_info *in = &INFO[op];
        double gbs = in->bytes / s / 1e9, tf = in->flops / s / 1e12;
        double roof = in->flops > 0 ? in->flops / PEAK_FLOPS / s : in->bytes / PEAK_BW / s;
        printf("%-24s %-30s %9.4f %9.1f %9.1f %6.1f%%\n", in->name, in->shape, ms,
               in->bytes > 0 ? gbs : 0.0, in->flops > 0 ? tf : 0.0, 100.0 * roof);
        fflush(stdout);
    }
    bench_decode(&b);
    teardown(&b);
    return 0;
}
