/* Every op of the "cuda" backend against the "cpu" oracle (float), from the same bf16-rounded
 * inputs: fresh random data each run (the seed is printed; --seed S repeats a run), outputs
 * poisoned with NaN before each op so an unwritten element fails, max rel-norm error per output in
 * a table.
 *
 *   test_ops_gpu            Gemma-2B shapes, odd shapes, and the fused and memory-bound ops
 *                           (add_rmsnorm_fwd and its FP8 variant, rmsnorm, rope) at more layouts,
 *                           Gemma-7B's included
 *   test_ops_gpu --small    odd shapes only (for compute-sanitizer)
 *   test_ops_gpu --bench    times each op at Gemma-2B shapes (ops_gpu_bench.c)
 * Exits non-zero on any FAIL. Built only with the CUDA backend; not a CTest test (CI has no GPU).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops_gpu_bench.h"
#include "ops_gpu_harness.h"

/* A bf16 output compared with the unrounded fp32 CPU result: one rounding is ~1.6e-3 rel-norm. */
#define TOL_BF16 5e-3
/* Attention keeps P in bf16 for the second product (flash-attention style). */
#define TOL_ATTN 1e-2
/* fp32 outputs: different summation orders of fp32 sums. */
#define TOL_F32 1e-5
#define TOL_F32_SUM 1e-4

#define C_(p) ((p).c)
#define G_(p) ((p).g)

typedef struct {
    const char *name;
    int N, C, F, Hq, Hkv, D, V;
} shapes;

/* Pointer to element off of pair p on the cpu (gpu = 0) or cuda side. */
static void *at(const harness *h, const pair *p, int gpu, size_t off) {
    if (gpu) return (char *)p->g + off * h->gpu->size[p->kind];
    return (char *)p->c + off * h->cpu->size[p->kind];
}

/* ---- elementwise ---- */

static void case_add(harness *h, size_t n, int misalign) {
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu%s", n, misalign ? " (unaligned)" : "");
    size_t o = misalign ? 1 : 0;
    pair a = pair_new(h, GT_ACT, n + 1), b = pair_new(h, GT_ACT, n + 1),
         y = pair_new(h, GT_ACT, n + 1);
    pair_fill(h, &a, -2, 2);
    pair_fill(h, &b, -2, 2);
    pair_poison(h, &y);
    h->cpu->add(h->cbe, at(h, &y, 0, o), at(h, &a, 0, o), at(h, &b, 0, o), n);
    h->gpu->add(h->gbe, at(h, &y, 1, o), at(h, &a, 1, o), at(h, &b, 1, o), n);
    ops_report(h, "add", shape, pair_err_range(h, &y, o, n), TOL_BF16);
    h->cpu->accumulate(h->cbe, at(h, &a, 0, o), at(h, &b, 0, o), n);
    h->gpu->accumulate(h->gbe, at(h, &a, 1, o), at(h, &b, 1, o), n);
    ops_report(h, "accumulate", shape, pair_err_range(h, &a, o, n), TOL_BF16);
    pair_free(h, &a);
    pair_free(h, &b);
    pair_free(h, &y);
}

/* ---- embedding ---- */

/* Tokens of this rank, of other ranks, repeats (exercising the deterministic dedup), and pad 0. */
static int32_t *make_tokens(harness *h, int N, int64_t vstart, int V) {
    int32_t *tok = gt_malloc((size_t)N * sizeof *tok);
    int hi = (int)(vstart + V + V / 4);
    for (int i = 0; i < N; i++) {
        int r = ops_rng_int(h, 0, 10);
        if (r < 4)
            tok[i] = ops_rng_int(h, 0, hi); /* anywhere */
        else if (r < 8)
            tok[i] = (int32_t)vstart + ops_rng_int(h, 0, V < 8 ? V : 8); /* repeats */
        else if (r < 9)
            tok[i] = 0; /* padding */
        else
            tok[i] = (int32_t)vstart + V - 1; /* last row */
    }
    return tok;
}

static void case_embedding(harness *h, int N, int C, int V, int64_t vstart) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d V=%d vstart=%lld", N, C, V, (long long)vstart);
    float scale = gt_round_bf16(sqrtf((float)C));
    int32_t *tok_h = make_tokens(h, N, vstart, V);
    ipair tok = ipair_new(h, tok_h, (size_t)N);
    pair wte = pair_new(h, GT_ACT, (size_t)V * C), out = pair_new(h, GT_ACT, (size_t)N * C);
    pair_fill(h, &wte, -1, 1);
    pair_poison(h, &out);
    h->cpu->embed_fwd(h->cbe, out.c, tok.c, wte.c, scale, vstart, V, N, C);
    h->gpu->embed_fwd(h->gbe, out.g, tok.g, wte.g, scale, vstart, V, N, C);
    ops_report(h, "embed_fwd", shape, pair_err(h, &out), TOL_BF16);
    pair dout = pair_new(h, GT_ACT, (size_t)N * C), dwte = pair_new(h, GT_GRAD, (size_t)V * C);
    pair_fill(h, &dout, -1, 1);
    pair_fill(h, &dwte, -1, 1);
    h->cpu->embed_bwd(h->cbe, dwte.c, dout.c, tok.c, scale, vstart, V, N, C, 0);
    h->gpu->embed_bwd(h->gbe, dwte.g, dout.g, tok.g, scale, vstart, V, N, C, 0);
    ops_report(h, "embed_bwd (dwte +=)", shape, pair_err(h, &dwte), TOL_F32);
    pair_free(h, &wte);
    pair_free(h, &out);
    pair_free(h, &dout);
    pair_free(h, &dwte);
    ipair_free(h, &tok);
    free(tok_h);
}

/* ---- RMSNorm ---- */

static void case_rmsnorm(harness *h, int N, int C) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d", N, C);
    pair x = pair_new(h, GT_ACT, (size_t)N * C), w = pair_new(h, GT_ACT, (size_t)C);
    pair y = pair_new(h, GT_ACT, (size_t)N * C), rstd = pair_new(h, GT_STAT, (size_t)N);
    pair_fill(h, &x, -2, 2);
    pair_fill(h, &w, -0.5f, 0.5f);
    pair_poison(h, &y);
    pair_poison(h, &rstd);
    h->cpu->rmsnorm_fwd(h->cbe, y.c, rstd.c, x.c, w.c, 1e-6f, N, C);
    h->gpu->rmsnorm_fwd(h->gbe, y.g, rstd.g, x.g, w.g, 1e-6f, N, C);
    ops_report(h, "rmsnorm_fwd out", shape, pair_err(h, &y), TOL_BF16);
    ops_report(h, "rmsnorm_fwd rstd", shape, pair_err(h, &rstd), TOL_F32);
    pair dy = pair_new(h, GT_ACT, (size_t)N * C), dx = pair_new(h, GT_ACT, (size_t)N * C);
    pair dw = pair_new(h, GT_GRAD, (size_t)C);
    pair_fill(h, &dy, -1, 1);
    pair_fill(h, &dx, -0.1f, 0.1f);
    pair_fill(h, &dw, -1, 1);
    h->cpu->rmsnorm_bwd(h->cbe, dx.c, dw.c, dy.c, x.c, w.c, rstd.c, N, C);
    h->gpu->rmsnorm_bwd(h->gbe, dx.g, dw.g, dy.g, x.g, w.g, rstd.g, N, C);
    ops_report(h, "rmsnorm_bwd dx +=", shape, pair_err(h, &dx), TOL_BF16);
    ops_report(h, "rmsnorm_bwd dw +=", shape, pair_err(h, &dw), TOL_F32_SUM);
    pair_free(h, &x);
    pair_free(h, &w);
    pair_free(h, &y);
    pair_free(h, &rstd);
    pair_free(h, &dy);
    pair_free(h, &dx);
    pair_free(h, &dw);
}

/* ---- the residual add fused into RMSNorm ---- */

/* Elements of the GPU side of a and b that differ (bf16 and fp32 convert to float exactly, so
 * equal floats are equal bits; a NaN never equals), over n elements from off. */
static double share_differing(harness *h, const pair *a, const pair *b, size_t off, size_t n) {
    float *x = pair_get(h, a, 1), *y = pair_get(h, b, 1);
    size_t differ = 0;
    for (size_t i = off; i < off + n; i++) differ += !(x[i] == y[i]);
    free(x);
    free(y);
    return (double)differ / (double)(n ? n : 1);
}

/* add_rmsnorm_fwd against the CPU op, and bitwise against the GPU's own add then rmsnorm_fwd (the
 * op's contract: bit-identical to that composition). off: elements every [N, C] pointer and w are
 * moved by (1: the unaligned fallback); alias: res is a (the op writes the sum over its input). */
static void case_add_rmsnorm(harness *h, int N, int C, size_t off, int alias) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d%s%s", N, C, off ? " (unaligned)" : "", alias ? " res=a" : "");
    size_t n = (size_t)N * C;
    const float eps = 1e-6f;
    pair a = pair_new(h, GT_ACT, n + off), b = pair_new(h, GT_ACT, n + off), w = pair_new(h, GT_ACT, C + off);
    pair res = pair_new(h, GT_ACT, n + off), y = pair_new(h, GT_ACT, n + off), rstd = pair_new(h, GT_STAT, N);
    pair cres = pair_new(h, GT_ACT, n + off), cy = pair_new(h, GT_ACT, n + off), crstd = pair_new(h, GT_STAT, N);
    pair_fill(h, &a, -2, 2);
    pair_fill(h, &b, -2, 2);
    pair_fill(h, &w, -0.5f, 0.5f);
    pair *r = alias ? &a : &res;
    pair *outs[] = {&res, &y, &rstd, &cres, &cy, &crstd};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) pair_poison(h, outs[i]);
    /* the composition on the GPU first: it reads a before the aliased fused op overwrites it */
    h->gpu->add(h->gbe, at(h, &cres, 1, off), at(h, &a, 1, off), at(h, &b, 1, off), n);
    h->gpu->rmsnorm_fwd(h->gbe, at(h, &cy, 1, off), crstd.g, at(h, &cres, 1, off), at(h, &w, 1, off), eps, N, C);
    h->cpu->add_rmsnorm_fwd(h->cbe, at(h, r, 0, off), at(h, &y, 0, off), rstd.c, at(h, &a, 0, off),
                            at(h, &b, 0, off), at(h, &w, 0, off), eps, N, C);
    h->gpu->add_rmsnorm_fwd(h->gbe, at(h, r, 1, off), at(h, &y, 1, off), rstd.g, at(h, &a, 1, off),
                            at(h, &b, 1, off), at(h, &w, 1, off), eps, N, C);
    /* the CPU's sum is a float, the GPU's is rounded to bf16 before the norm reads it: rstd and out
     * differ from the CPU's by that rounding too, hence bf16 tolerances for all three */
    ops_report(h, "add_rmsnorm_fwd res", shape, pair_err_range(h, r, off, n), TOL_BF16);
    ops_report(h, "add_rmsnorm_fwd out", shape, pair_err_range(h, &y, off, n), TOL_BF16);
    ops_report(h, "add_rmsnorm_fwd rstd", shape, pair_err(h, &rstd), TOL_BF16);
    ops_report(h, "add_rmsnorm_fwd res: share not bitwise add's", shape, share_differing(h, r, &cres, off, n), 0.0);
    ops_report(h, "add_rmsnorm_fwd out: share not bitwise rmsnorm_fwd's", shape,
               share_differing(h, &y, &cy, off, n), 0.0);
    ops_report(h, "add_rmsnorm_fwd rstd: share not bitwise rmsnorm_fwd's", shape,
               share_differing(h, &rstd, &crstd, 0, (size_t)N), 0.0);
    pair *all[] = {&a, &b, &w, &res, &y, &rstd, &cres, &cy, &crstd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(h, all[i]);
}

/* add_rmsnorm_fwd_fp8 (E4M3, y NULL as the model calls it) against add then rmsnorm_fwd_fp8 on the
 * GPU, bit for bit: res, rstd, the bytes of y8 and y8t, the bits of amax. off: as above, also for
 * the FP8 buffers (1: the unaligned paths of both passes). */
static void case_add_rmsnorm_fp8(harness *h, int N, int C, size_t off) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d E4M3%s", N, C, off ? " (unaligned)" : "");
    size_t n = (size_t)N * C;
    const float eps = 1e-6f, scale_h = 56.0f;
    pair a = pair_new(h, GT_ACT, n + off), b = pair_new(h, GT_ACT, n + off), w = pair_new(h, GT_ACT, C + off);
    pair res = pair_new(h, GT_ACT, n + off), rstd = pair_new(h, GT_STAT, N);
    pair cres = pair_new(h, GT_ACT, n + off), crstd = pair_new(h, GT_STAT, N);
    pair_fill(h, &a, -2, 2);
    pair_fill(h, &b, -2, 2);
    pair_fill(h, &w, -0.5f, 0.5f);
    pair *outs[] = {&res, &rstd, &cres, &crstd};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) pair_poison(h, outs[i]);
    uint8_t *q[4]; /* composition y8, y8t; fused y8, y8t (zero-filled by alloc) */
    for (int i = 0; i < 4; i++) q[i] = h->gpu->alloc(h->gbe, n + off);
    float *scale = h->gpu->alloc(h->gbe, sizeof(float)), *amax = h->gpu->alloc(h->gbe, 2 * sizeof(float));
    h->gpu->upload_raw(h->gbe, scale, &scale_h, sizeof scale_h);
    h->gpu->add(h->gbe, at(h, &cres, 1, off), at(h, &a, 1, off), at(h, &b, 1, off), n);
    h->gpu->rmsnorm_fwd_fp8(h->gbe, NULL, q[0] + off, q[1] + off, crstd.g, at(h, &cres, 1, off), at(h, &w, 1, off),
                            eps, N, C, GT_E4M3, scale, amax);
    h->gpu->add_rmsnorm_fwd_fp8(h->gbe, at(h, &res, 1, off), NULL, q[2] + off, q[3] + off, rstd.g,
                                at(h, &a, 1, off), at(h, &b, 1, off), at(h, &w, 1, off), eps, N, C, GT_E4M3,
                                scale, amax + 1);
    uint8_t *hq = gt_malloc(4 * (n + off));
    for (int i = 0; i < 4; i++) h->gpu->download_raw(h->gbe, hq + i * (n + off), q[i], n + off);
    float am[2];
    h->gpu->download_raw(h->gbe, am, amax, sizeof am);
    size_t differ = memcmp(am, am + 1, sizeof(float)) != 0;
    for (size_t i = off; i < n + off; i++)
        differ += (hq[i] != hq[2 * (n + off) + i]) + (hq[(n + off) + i] != hq[3 * (n + off) + i]);
    ops_report(h, "add_rmsnorm_fwd_fp8: y8, y8t, amax not bitwise", shape, (double)differ, 0.0);
    ops_report(h, "add_rmsnorm_fwd_fp8: res not bitwise", shape, share_differing(h, &res, &cres, off, n), 0.0);
    ops_report(h, "add_rmsnorm_fwd_fp8: rstd not bitwise", shape, share_differing(h, &rstd, &crstd, 0, (size_t)N),
               0.0);
    free(hq);
    for (int i = 0; i < 4; i++) h->gpu->release(h->gbe, q[i]);
    h->gpu->release(h->gbe, scale);
    h->gpu->release(h->gbe, amax);
    pair *all[] = {&a, &b, &w, &res, &rstd, &cres, &crstd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(h, all[i]);
}

/* ---- matmul ---- */

/* With rows > 0 the CPU computes only the last `rows` rows of y and dx and the last `rows` rows of
 * dW (a full-size CPU product at Gemma widths and N = 4096 takes minutes); the GPU runs in full. */
static void case_matmul(harness *h, const char *name, int N, int IC, int OC, int rows) {
    char op[64], shape[64];
    snprintf(shape, sizeof shape, "N=%d IC=%d OC=%d%s", N, IC, OC, rows ? " (rows sampled)" : "");
    int R = rows ? rows : N, r0 = N - R, W = rows ? rows : OC, o0 = OC - W;
    pair x = pair_new(h, GT_ACT, (size_t)N * IC), w = pair_new(h, GT_ACT, (size_t)OC * IC);
    pair y = pair_new(h, GT_ACT, (size_t)N * OC);
    pair_fill(h, &x, -1, 1);
    pair_fill(h, &w, -0.05f, 0.05f);
    pair_poison(h, &y);
    h->gpu->matmul_fwd(h->gbe, y.g, x.g, w.g, N, IC, OC);
    h->cpu->matmul_fwd(h->cbe, at(h, &y, 0, (size_t)r0 * OC), at(h, &x, 0, (size_t)r0 * IC), w.c, R,
                       IC, OC);
    snprintf(op, sizeof op, "matmul_fwd %s", name);
    ops_report(h, op, shape, pair_err_range(h, &y, (size_t)r0 * OC, (size_t)R * OC), TOL_BF16);
    pair_free(h, &y);

    pair dy = pair_new(h, GT_ACT, (size_t)N * OC), dx = pair_new(h, GT_ACT, (size_t)N * IC);
    pair dw = pair_new(h, GT_GRAD, (size_t)OC * IC);
    pair_fill(h, &dy, -1, 1);
    pair_poison(h, &dx);
    pair_fill(h, &dw, -1, 1);
    h->gpu->matmul_bwd(h->gbe, dx.g, dw.g, dy.g, x.g, w.g, N, IC, OC);
    /* dx rows: a CPU backward on those rows alone, its dW into a scratch buffer. */
    float *scratch = rows ? h->cpu->alloc(h->cbe, (size_t)OC * IC * sizeof(float)) : NULL;
    if (rows)
        h->cpu->matmul_bwd(h->cbe, at(h, &dx, 0, (size_t)r0 * IC), scratch,
                           at(h, &dy, 0, (size_t)r0 * OC), at(h, &x, 0, (size_t)r0 * IC), w.c, R,
                           IC, OC);
    h->cpu->release(h->cbe, scratch);
    /* dW rows o0..OC-1: dy's columns o0.. gathered into [N, W], all N rows of x. */
    float *dys = dy.c;
    if (rows) {
        dys = h->cpu->alloc(h->cbe, (size_t)N * W * sizeof(float));
        for (int n = 0; n < N; n++)
            memcpy(dys + (size_t)n * W, (float *)dy.c + (size_t)n * OC + o0,
                   (size_t)W * sizeof(float));
    }
    h->cpu->matmul_bwd(h->cbe, rows ? NULL : dx.c, at(h, &dw, 0, (size_t)o0 * IC), dys, x.c,
                       at(h, &w, 0, (size_t)o0 * IC), N, IC, W);
    if (rows) h->cpu->release(h->cbe, dys);
    snprintf(op, sizeof op, "matmul_bwd %s dx", name);
    ops_report(h, op, shape, pair_err_range(h, &dx, (size_t)r0 * IC, (size_t)R * IC), TOL_BF16);
    snprintf(op, sizeof op, "matmul_bwd %s dW +=", name);
    ops_report(h, op, shape, pair_err_range(h, &dw, (size_t)o0 * IC, (size_t)W * IC), TOL_F32_SUM);
    pair_free(h, &x);
    pair_free(h, &w);
    pair_free(h, &dy);
    pair_free(h, &dx);
    pair_free(h, &dw);
}

/* matmul_fwd alone (the GEMV path at N <= 8 rows, cuBLASLt above), with x, W and y moved by xo, wo
 * and yo elements: 1 puts x or W off 16-byte alignment (the GEMV's one-element path) or y off it
 * (y is written one element at a time either way). */
static void case_matmul_fwd(harness *h, const char *name, int N, int IC, int OC, size_t xo, size_t wo,
                            size_t yo) {
    char op[64], shape[64];
    snprintf(shape, sizeof shape, "N=%d IC=%d OC=%d%s%s%s", N, IC, OC, xo ? " x+1" : "", wo ? " W+1" : "",
             yo ? " y+1" : "");
    pair x = pair_new(h, GT_ACT, (size_t)N * IC + xo), w = pair_new(h, GT_ACT, (size_t)OC * IC + wo);
    pair y = pair_new(h, GT_ACT, (size_t)N * OC + yo);
    pair_fill(h, &x, -1, 1);
    pair_fill(h, &w, -0.05f, 0.05f);
    pair_poison(h, &y);
    h->gpu->matmul_fwd(h->gbe, at(h, &y, 1, yo), at(h, &x, 1, xo), at(h, &w, 1, wo), N, IC, OC);
    h->cpu->matmul_fwd(h->cbe, at(h, &y, 0, yo), at(h, &x, 0, xo), at(h, &w, 0, wo), N, IC, OC);
    snprintf(op, sizeof op, "matmul_fwd %s", name);
    ops_report(h, op, shape, pair_err_range(h, &y, yo, (size_t)N * OC), TOL_BF16);
    pair_free(h, &x);
    pair_free(h, &w);
    pair_free(h, &y);
}

/* ---- RoPE ---- */

/* off: elements the qkv pointer is moved by (1: the kernel's one-pair-per-thread path at any D).
 * The v heads must come back untouched, bit for bit. */
static void case_rope(harness *h, int N, int Hq, int Hkv, int D, size_t off) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d Hq=%d Hkv=%d D=%d%s", N, Hq, Hkv, D, off ? " (unaligned)" : "");
    size_t n = (size_t)N * (Hq + 2 * Hkv) * D;
    int32_t *pos_h = gt_malloc((size_t)N * sizeof *pos_h);
    for (int i = 0; i < N; i++) pos_h[i] = i < 2 ? i : ops_rng_int(h, 0, 8192);
    ipair pos = ipair_new(h, pos_h, (size_t)N);
    pair qkv = pair_new(h, GT_ACT, n + off);
    pair_fill(h, &qkv, -2, 2);
    float *before = pair_get(h, &qkv, 1);
    h->cpu->rope_fwd(h->cbe, at(h, &qkv, 0, off), pos.c, 10000.0f, N, Hq, Hkv, D);
    h->gpu->rope_fwd(h->gbe, at(h, &qkv, 1, off), pos.g, 10000.0f, N, Hq, Hkv, D);
    ops_report(h, "rope_fwd", shape, pair_err_range(h, &qkv, off, n), TOL_BF16);
    float *after = pair_get(h, &qkv, 1);
    size_t width = (size_t)(Hq + 2 * Hkv) * D, vchanged = 0;
    for (int i = 0; i < N; i++)
        for (int g = 0; g < Hkv; g++)
            for (int d = 0; d < D; d++) {
                size_t e = off + (size_t)i * width + ((size_t)g * (Hq / Hkv + 2) + Hq / Hkv + 1) * D + d;
                vchanged += !(before[e] == after[e]);
            }
    ops_report(h, "rope_fwd: v elements changed", shape, (double)vchanged, 0.0);
    free(before);
    free(after);
    pair_fill(h, &qkv, -2, 2);
    h->cpu->rope_bwd(h->cbe, at(h, &qkv, 0, off), pos.c, 10000.0f, N, Hq, Hkv, D);
    h->gpu->rope_bwd(h->gbe, at(h, &qkv, 1, off), pos.g, 10000.0f, N, Hq, Hkv, D);
    ops_report(h, "rope_bwd", shape, pair_err_range(h, &qkv, off, n), TOL_BF16);
    pair_free(h, &qkv);
    ipair_free(h, &pos);
    free(pos_h);
}

/* ---- attention (kernels/cuda/attention_*.cu, through the op table) ---- */

static void case_attention(harness *h, int B, int T, int Hq, int Hkv, int D, int segments) {
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d T=%d Hq=%d Hkv=%d D=%d%s", B, T, Hq, Hkv, D,
             segments ? " seg" : "");
    int N = B * T;
    float scale = 1.0f / sqrtf((float)D);
    int32_t *seg_h = gt_malloc((size_t)N * sizeof *seg_h);
    for (int i = 0, id = 0; i < N; i++)
        seg_h[i] = (i % T == 0 || ops_rng_int(h, 0, 40) == 0) ? ++id : id;
    ipair seg = ipair_new(h, seg_h, (size_t)N);
    pair qkv = pair_new(h, GT_ACT, (size_t)N * (Hq + 2 * Hkv) * D);
    pair out = pair_new(h, GT_ACT, (size_t)N * Hq * D), lse = pair_new(h, GT_STAT, (size_t)N * Hq);
    pair_fill(h, &qkv, -1.7f, 1.7f);
    pair_poison(h, &out);
    pair_poison(h, &lse);
    h->cpu->attention_fwd(h->cbe, out.c, lse.c, qkv.c, segments ? seg.c : NULL, scale, B, T, Hq,
                          Hkv, D);
    h->gpu->attention_fwd(h->gbe, out.g, lse.g, qkv.g, segments ? seg.g : NULL, scale, B, T, Hq,
                          Hkv, D);
    ops_report(h, "attention_fwd out", shape, pair_err(h, &out), TOL_ATTN);
    ops_report(h, "attention_fwd lse", shape, pair_err(h, &lse), TOL_F32_SUM);
    pair dout = pair_new(h, GT_ACT, (size_t)N * Hq * D), dqkv = pair_new(h, GT_ACT, qkv.n);
    pair_fill(h, &dout, -1, 1);
    pair_poison(h, &dqkv);
    h->cpu->attention_bwd(h->cbe, dqkv.c, dout.c, qkv.c, out.c, lse.c, segments ? seg.c : NULL,
                          scale, B, T, Hq, Hkv, D);
    h->gpu->attention_bwd(h->gbe, dqkv.g, dout.g, qkv.g, out.g, lse.g, segments ? seg.g : NULL,
                          scale, B, T, Hq, Hkv, D);
    ops_report(h, "attention_bwd dqkv", shape, pair_err(h, &dqkv), TOL_ATTN);
    pair_free(h, &qkv);
    pair_free(h, &out);
    pair_free(h, &lse);
    pair_free(h, &dout);
    pair_free(h, &dqkv);
    ipair_free(h, &seg);
    free(seg_h);
}

/* ---- GeGLU ---- */

static void case_geglu(harness *h, int N, int F, gt_gelu kind) {
    char op[64], shape[64];
    const char *kn = kind == GT_GELU_TANH ? "tanh" : "erf";
    snprintf(shape, sizeof shape, "N=%d F=%d", N, F);
    pair a = pair_new(h, GT_ACT, (size_t)N * 2 * F), y = pair_new(h, GT_ACT, (size_t)N * F);
    pair_fill(h, &a, -3, 3);
    pair_poison(h, &y);
    h->cpu->geglu_fwd(h->cbe, y.c, a.c, kind, N, F);
    h->gpu->geglu_fwd(h->gbe, y.g, a.g, kind, N, F);
    snprintf(op, sizeof op, "geglu_fwd %s", kn);
    ops_report(h, op, shape, pair_err(h, &y), TOL_BF16);
    pair dh = pair_new(h, GT_ACT, (size_t)N * F), da = pair_new(h, GT_ACT, (size_t)N * 2 * F);
    pair_fill(h, &dh, -1, 1);
    pair_poison(h, &da);
    h->cpu->geglu_bwd(h->cbe, da.c, dh.c, a.c, kind, N, F);
    h->gpu->geglu_bwd(h->gbe, da.g, dh.g, a.g, kind, N, F);
    snprintf(op, sizeof op, "geglu_bwd %s", kn);
    ops_report(h, op, shape, pair_err(h, &da), TOL_BF16);
    pair_free(h, &a);
    pair_free(h, &y);
    pair_free(h, &dh);
    pair_free(h, &da);
}

/* ---- cross-entropy: tp = 1 over all V columns, and tp = 2 over two column halves ---- */

static void ce_tp2(harness *h, const float *logits, const ipair *target, int N, int V,
                   const char *shape) {
    int V0 = V / 2, Vs[2] = {V0, V - V0};
    pair parts = pair_new(h, GT_STAT, (size_t)2 * N * 3);
    pair_poison(h, &parts);
    for (int r = 0; r < 2; r++) {
        pair half = pair_new(h, GT_ACT, (size_t)N * Vs[r]);
        float *v = gt_malloc(half.n * sizeof(float));
        for (int n = 0; n < N; n++)
            memcpy(v + (size_t)n * Vs[r], logits + (size_t)n * V + (r ? V0 : 0),
                   (size_t)Vs[r] * sizeof(float));
        pair_set(h, &half, v);
        h->cpu->ce_partial(h->cbe, at(h, &parts, 0, (size_t)r * N * 3), half.c, target->c,
                           r ? V0 : 0, Vs[r], N);
        h->gpu->ce_partial(h->gbe, at(h, &parts, 1, (size_t)r * N * 3), half.g, target->g,
                           r ? V0 : 0, Vs[r], N);
        free(v);
        pair_free(h, &half);
    }
    pair lse = pair_new(h, GT_STAT, (size_t)N), loss = pair_new(h, GT_STAT, 1);
    pair_poison(h, &lse);
    h->cpu->ce_finish(h->cbe, lse.c, loss.c, parts.c, target->c, 2, N);
    h->gpu->ce_finish(h->gbe, lse.g, loss.g, parts.g, target->g, 2, N);
    ops_report(h, "ce tp=2 lse", shape, pair_err(h, &lse), TOL_F32);
    ops_report(h, "ce tp=2 loss_sum", shape, pair_err(h, &loss), TOL_F32);
    pair_free(h, &parts);
    pair_free(h, &lse);
    pair_free(h, &loss);
}

static void case_ce(harness *h, int N, int V) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d V=%d", N, V);
    int32_t *tgt = gt_malloc((size_t)N * sizeof *tgt);
    int count = 0;
    for (int i = 0; i < N; i++) {
        tgt[i] = ops_rng_int(h, 0, 5) == 0 ? -100 : ops_rng_int(h, 0, V);
        count += tgt[i] >= 0;
    }
    ipair target = ipair_new(h, tgt, (size_t)N);
    float *lg = gt_malloc((size_t)N * V * sizeof(float));
    for (size_t i = 0; i < (size_t)N * V; i++) lg[i] = gt_round_bf16(ops_rng_uniform(h, -8, 8));
    pair logits = pair_new(h, GT_ACT, (size_t)N * V), part = pair_new(h, GT_STAT, (size_t)N * 3);
    pair_set(h, &logits, lg);
    pair_poison(h, &part);
    h->cpu->ce_partial(h->cbe, part.c, logits.c, target.c, 0, V, N);
    h->gpu->ce_partial(h->gbe, part.g, logits.g, target.g, 0, V, N);
    ops_report(h, "ce_partial", shape, pair_err(h, &part), TOL_F32);
    pair lse = pair_new(h, GT_STAT, (size_t)N), loss = pair_new(h, GT_STAT, 1);
    float init = 0.5f;
    pair_poison(h, &lse);
    pair_set(h, &loss, &init);
    h->cpu->ce_finish(h->cbe, lse.c, loss.c, part.c, target.c, 1, N);
    h->gpu->ce_finish(h->gbe, lse.g, loss.g, part.g, target.g, 1, N);
    ops_report(h, "ce_finish lse", shape, pair_err(h, &lse), TOL_F32);
    ops_report(h, "ce_finish loss_sum +=", shape, pair_err(h, &loss), TOL_F32);
    ce_tp2(h, lg, &target, N, V, shape);
    float dscale = 1.0f / (float)(count ? count : 1);
    h->cpu->ce_backward(h->cbe, logits.c, logits.c, target.c, lse.c, dscale, 0, V, N);
    h->gpu->ce_backward(h->gbe, logits.g, logits.g, target.g, lse.g, dscale, 0, V, N);
    ops_report(h, "ce_backward (in place)", shape, pair_err(h, &logits), TOL_BF16);
    pair_free(h, &logits);
    pair_free(h, &part);
    pair_free(h, &lse);
    pair_free(h, &loss);
    ipair_free(h, &target);
    free(lg);
    free(tgt);
}

/* ---- optimizer ---- */

static void case_optimizer(harness *h, size_t n) {
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu", n);
    pair g = pair_new(h, GT_GRAD, n), ss = pair_new(h, GT_STAT, 1);
    float init = 1.25f;
    pair_fill(h, &g, -1, 1);
    pair_set(h, &ss, &init);
    h->cpu->grad_sumsq(h->cbe, ss.c, g.c, n);
    h->gpu->grad_sumsq(h->gbe, ss.g, g.g, n);
    ops_report(h, "grad_sumsq +=", shape, pair_err(h, &ss), TOL_F32);
    pair p = pair_new(h, GT_ACT, n), master = pair_new(h, GT_GRAD, n);
    pair m = pair_new(h, GT_GRAD, n), v = pair_new(h, GT_GRAD, n);
    float *init_p = gt_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) init_p[i] = gt_round_bf16(ops_rng_uniform(h, -1, 1));
    pair_set(h, &p, init_p);
    pair_set(h, &master, init_p);
    pair_fill(h, &m, -0.01f, 0.01f);
    pair_fill(h, &v, 0, 1e-4f);
    gt_adamw_args args = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 1, GT_OPT_FP32, 0, 0};
    for (args.step = 1; args.step <= 3; args.step++) {
        h->cpu->adamw(h->cbe, p.c, master.c, m.c, v.c, g.c, n, &args);
        h->gpu->adamw(h->gbe, p.g, master.g, m.g, v.g, g.g, n, &args);
    }
    ops_report(h, "adamw x3 master", shape, pair_err(h, &master), TOL_F32);
    ops_report(h, "adamw x3 m", shape, pair_err(h, &m), TOL_F32);
    ops_report(h, "adamw x3 v", shape, pair_err(h, &v), TOL_F32);
    ops_report(h, "adamw x3 param (bf16)", shape, pair_err(h, &p), TOL_BF16);
    free(init_p);
    pair_free(h, &g);
    pair_free(h, &ss);
    pair_free(h, &p);
    pair_free(h, &master);
    pair_free(h, &m);
    pair_free(h, &v);
}

/* The lean states (optim.state): bf16 m and v (ACT pairs: bf16 here, bf16-rounded floats on the
 * CPU); bf16_moments keeps the fp32 master, bf16 has none and rounds the weights stochastically
 * with the same hash bits as the CPU. The same fp32 math rounds the same way, so all but the
 * elements whose pre-rounding values differ in the last fp32 bit (FMA contraction) are bitwise
 * equal: at most 1% may differ, none by more than one bf16 ulp (relative error TOL_BF16). */
static void case_optimizer_lean(harness *h, size_t n, int state) {
    char shape[64], name[96];
    snprintf(shape, sizeof shape, "n=%zu", n);
    const char *sn = state == GT_OPT_BF16 ? "bf16" : "bf16_moments";
    pair g = pair_new(h, GT_GRAD, n), p = pair_new(h, GT_ACT, n), master = pair_new(h, GT_GRAD, n);
    pair m = pair_new(h, GT_ACT, n), v = pair_new(h, GT_ACT, n);
    float *init = gt_malloc(n * sizeof(float));
    pair_fill(h, &g, -1, 1);
    for (size_t i = 0; i < n; i++) init[i] = gt_round_bf16(ops_rng_uniform(h, -1, 1));
    pair_set(h, &p, init);
    pair_set(h, &master, init);
    for (size_t i = 0; i < n; i++) init[i] = gt_round_bf16(ops_rng_uniform(h, -0.01f, 0.01f));
    pair_set(h, &m, init);
    for (size_t i = 0; i < n; i++) init[i] = gt_round_bf16(ops_rng_uniform(h, 0, 1e-4f));
    pair_set(h, &v, init);
    int bf16 = state == GT_OPT_BF16;
    gt_adamw_args args = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 1, state, 1234, 777};
    for (args.step = 1; args.step <= 3; args.step++) {
        h->cpu->adamw(h->cbe, p.c, bf16 ? NULL : master.c, m.c, v.c, g.c, n, &args);
        h->gpu->adamw(h->gbe, p.g, bf16 ? NULL : master.g, m.g, v.g, g.g, n, &args);
    }
    if (!bf16) {
        snprintf(name, sizeof name, "adamw %s x3 master", sn);
        ops_report(h, name, shape, pair_err(h, &master), TOL_F32);
    }
    pair *outs[3] = {&p, &m, &v};
    const char *what[3] = {"param", "m", "v"};
    for (int k = 0; k < 3; k++) {
        float *a = pair_get(h, outs[k], 1), *b = pair_get(h, outs[k], 0);
        /* With a master, the CPU's param is the fp32 master itself (its ACT is a float); the GPU
         * stores it rounded to nearest bf16, so that is what the GPU's bits are compared with. */
        if (!bf16 && k == 0)
            for (size_t i = 0; i < n; i++) b[i] = gt_round_bf16(b[i]);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) differ += a[i] != b[i];
        snprintf(name, sizeof name, "adamw %s x3 %s (bf16)", sn, what[k]);
        ops_report(h, name, shape, pair_err(h, outs[k]), TOL_BF16);
        snprintf(name, sizeof name, "adamw %s x3 %s: share not bitwise the CPU's", sn, what[k]);
        ops_report(h, name, shape, (double)differ / (double)n, 0.01);
        free(a);
        free(b);
    }
    free(init);
    pair_free(h, &g);
    pair_free(h, &p);
    pair_free(h, &master);
    pair_free(h, &m);
    pair_free(h, &v);
}

/* ---- determinism: the reductions that avoid atomics give the same bits twice ---- */

/* Runs `op` twice on the GPU from the same starting contents of p (saved first) and reports 0 when
 * the results are bitwise equal, 1 otherwise. */
typedef void (*gpu_op)(harness *h, void *ctx);
static void check_repeatable(harness *h, const char *name, const char *shape, pair *p, gpu_op op,
                             void *ctx) {
    float *start = pair_get(h, p, 1);
    op(h, ctx);
    float *first = pair_get(h, p, 1);
    h->gpu->upload(h->gbe, p->kind, p->g, start, p->n);
    op(h, ctx);
    float *second = pair_get(h, p, 1);
    ops_report(h, name, shape, memcmp(first, second, p->n * sizeof(float)) ? 1.0 : 0.0, 0.0);
    free(start);
    free(first);
    free(second);
}

typedef struct {
    pair x, w, dy, dx, dw, rstd, g, out, dwte;
    ipair tok;
    int N, C, V;
} det_ctx;

static void det_embed(harness *h, void *c) {
    det_ctx *d = c;
    h->gpu->embed_bwd(h->gbe, d->dwte.g, d->dy.g, d->tok.g, 45.25f, 0, d->V, d->N, d->C, 0);
}
static void det_rmsnorm(harness *h, void *c) {
    det_ctx *d = c;
    h->gpu->rmsnorm_bwd(h->gbe, d->dx.g, d->dw.g, d->dy.g, d->x.g, d->w.g, d->rstd.g, d->N, d->C);
}
static void det_sumsq(harness *h, void *c) {
    det_ctx *d = c;
    h->gpu->grad_sumsq(h->gbe, d->out.g, d->g.g, d->g.n);
}
static void det_wgrad(harness *h, void *c) {
    det_ctx *d = c;
    h->gpu->matmul_bwd(h->gbe, NULL, d->dwte.g, d->dy.g, d->x.g, d->dwte.g, d->N, d->C, d->V);
}

static void case_determinism(harness *h, int N, int C, int V) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d V=%d", N, C, V);
    det_ctx d;
    d.N = N, d.C = C, d.V = V;
    int32_t *tok_h = make_tokens(h, N, 0, V);
    d.tok = ipair_new(h, tok_h, (size_t)N);
    d.x = pair_new(h, GT_ACT, (size_t)N * C), d.w = pair_new(h, GT_ACT, (size_t)C);
    d.dy = pair_new(h, GT_ACT, (size_t)N * C), d.dx = pair_new(h, GT_ACT, (size_t)N * C);
    d.dw = pair_new(h, GT_GRAD, (size_t)C), d.rstd = pair_new(h, GT_STAT, (size_t)N);
    d.g = pair_new(h, GT_GRAD, (size_t)N * C), d.out = pair_new(h, GT_STAT, 1);
    d.dwte = pair_new(h, GT_GRAD, (size_t)V * C);
    pair *rnd[] = {&d.x, &d.w, &d.dy, &d.dx, &d.dw, &d.rstd, &d.g, &d.out, &d.dwte};
    for (size_t i = 0; i < sizeof rnd / sizeof rnd[0]; i++) pair_fill(h, rnd[i], 0.1f, 1);
    check_repeatable(h, "repeatable embed_bwd", shape, &d.dwte, det_embed, &d);
    check_repeatable(h, "repeatable rmsnorm_bwd dw", shape, &d.dw, det_rmsnorm, &d);
    check_repeatable(h, "repeatable grad_sumsq", shape, &d.out, det_sumsq, &d);
    /* dW of a [N,C] x [N,V] product (W itself unused without dx): cuBLASLt's own determinism */
    pair_free(h, &d.dy);
    d.dy = pair_new(h, GT_ACT, (size_t)N * V);
    pair_fill(h, &d.dy, -1, 1);
    check_repeatable(h, "repeatable matmul_bwd dW", shape, &d.dwte, det_wgrad, &d);
    for (size_t i = 0; i < sizeof rnd / sizeof rnd[0]; i++) pair_free(h, rnd[i]);
    ipair_free(h, &d.tok);
    free(tok_h);
}

/* ---- the suites ---- */

static void run_shapes(harness *h, const shapes *s, int gemma) {
    printf("-- %s: N=%d C=%d F=%d Hq=%d Hkv=%d D=%d V=%d\n", s->name, s->N, s->C, s->F, s->Hq,
           s->Hkv, s->D, s->V);
    int qkv = (s->Hq + 2 * s->Hkv) * s->D;
    case_add(h, (size_t)s->N * s->C, 0);
    case_add(h, (size_t)s->N * s->C + 3, 1);
    case_embedding(h, s->N, s->C, gemma ? 8192 : s->V, gemma ? 0 : 500);
    case_rmsnorm(h, s->N, s->C);
    case_add_rmsnorm(h, s->N, s->C, 0, 0);
    case_add_rmsnorm(h, s->N, s->C, 0, 1);
    case_add_rmsnorm_fp8(h, s->N, s->C, 0);
    case_matmul(h, "qkv", s->N, s->C, qkv, gemma ? 8 : 0);
    case_matmul(h, "o", s->N, s->Hq * s->D, s->C, gemma ? 8 : 0);
    case_matmul(h, "fc1", s->N, s->C, 2 * s->F, gemma ? 8 : 0);
    case_matmul(h, "fc2", s->N, s->F, s->C, gemma ? 8 : 0);
    case_matmul(h, "lm_head", gemma ? 1024 : s->N, s->C, s->V, gemma ? 4 : 0);
    case_rope(h, s->N, s->Hq, s->Hkv, s->D, 0);
    if (gemma) {
        case_attention(h, 2, 256, s->Hq, s->Hkv, s->D, 0);
        case_attention(h, 1, 512, s->Hq, s->Hkv, s->D, 1);
    } else {
        case_attention(h, 1, s->N, s->Hq, s->Hkv, s->D, 0);
        case_attention(h, 2, s->N, s->Hq, s->Hkv, s->D, 1);
    }
    case_geglu(h, gemma ? 1024 : s->N, s->F, GT_GELU_TANH);
    case_geglu(h, gemma ? 1024 : s->N, s->F, GT_GELU_ERF);
    case_ce(h, gemma ? 64 : s->N, s->V);
    case_optimizer(h, gemma ? ((size_t)1 << 22) + 3 : 1001);
    case_optimizer_lean(h, gemma ? ((size_t)1 << 22) + 3 : 1001, GT_OPT_BF16_MOMENTS);
    case_optimizer_lean(h, gemma ? ((size_t)1 << 22) + 3 : 1001, GT_OPT_BF16);
    if (gemma) case_determinism(h, s->N, s->C, 8192);
}

/* Shapes whose sizes are not multiples of 8: the scalar paths of the vectorized kernels. */
static void run_scalar_paths(harness *h) {
    printf("-- scalar paths (sizes not multiples of 8)\n");
    case_embedding(h, 37, 75, 300, 0);
    case_rmsnorm(h, 37, 75);
    case_rmsnorm(h, 9, 1500); /* wider than one column group per thread */
    case_add_rmsnorm(h, 37, 75, 0, 0);
    case_add_rmsnorm(h, 37, 72, 1, 0);
    case_add_rmsnorm(h, 37, 72, 1, 1);
    case_rope(h, 37, 4, 2, 24, 1);
    case_matmul(h, "odd", 37, 75, 41, 0);
}

/* The memory-bound ops the training step fuses or vectorizes, at more head and width layouts than
 * run_shapes: Gemma-7B (C=3072, 16 q and 16 KV heads), rows that leave the last row group of the
 * norm backward part-filled, the largest head_dim, MHA, a head count that leaves RoPE's last group
 * of heads part-filled, unaligned rows; and the norm backward's dw repeatable at 7B width. */
static void run_fused_shapes(harness *h, int full) {
    printf("-- fused and memory-bound ops: more shapes\n");
    case_rmsnorm(h, 37, 3072);
    case_rmsnorm(h, 3, 2048);
    case_add_rmsnorm(h, 37, 3072, 0, 0);
    case_add_rmsnorm(h, 1, 8, 0, 0);
    case_add_rmsnorm_fp8(h, 32, 64, 0); /* the tiled cast pass */
    case_add_rmsnorm_fp8(h, 32, 64, 1);
    case_rope(h, 37, 4, 2, 16, 0); /* D/2 = 8: one vector per half */
    case_rope(h, 33, 3, 3, 32, 0); /* MHA */
    case_rope(h, 5, 8, 1, 512, 0); /* the largest D */
    case_rope(h, 7, 5, 1, 256, 0); /* 6 heads rotated: a part-filled group */
    case_rope(h, 9, 8, 1, 256, 1); /* unaligned at Gemma-2B's D */
    /* the 8-wide path: rows enough that it fills a block per SM (the cases above, fewer, run one
     * pair per thread; an H200's 132 SMs need N D/2 >= 33,792) */
    case_rope(h, 4300, 4, 2, 16, 0);
    case_rope(h, 140, 8, 1, 512, 0);
    case_rope(h, 270, 5, 1, 256, 0);
    if (!full) return;
    case_rmsnorm(h, 4096, 3072);
    case_add_rmsnorm(h, 4096, 3072, 0, 1);
    case_add_rmsnorm_fp8(h, 4096, 3072, 0);
    case_rope(h, 4096, 16, 16, 256, 0);
    case_determinism(h, 4096, 3072, 8192);
}

/* Forward GEMMs of the few rows of a decode step: matmul_fwd runs the GEMV kernel (gemv.cu) at N <=
 * 8 rows and cuBLASLt from 9. Every row count at an IC below one 256-column sweep (72) and an OC not
 * a multiple of 4 (37), Gemma-2B's qkv and fc2 decode shapes, a wide odd OC, 9 rows, and an IC not
 * a multiple of 8, with the backward; then the forward alone at 1, 2, 3, 5, 8 and 9 rows on
 * Gemma-2B's qkv (2 to 8 warps share a row group's columns, by N, on 132 SMs) and fc2 (8), and at IC
 * 37 OC 53 (the one-element path, rows past OC in the last block); x, W or y off 16-byte alignment;
 * Gemma-7B's qkv, o_proj and fc2 (1, 8 and 4 warps a row group); the lm_head's grid (full runs:
 * 256000 rows); and the GEMV's bits repeatable (the warps' sums through shared memory). */
static void gemv_fc2(harness *h, void *c) {
    det_ctx *d = c;
    h->gpu->matmul_fwd(h->gbe, d->out.g, d->x.g, d->w.g, d->N, d->C, d->V);
}

static void run_decode_gemms(harness *h, int full) {
    printf("-- few-row forward GEMMs (decode)\n");
    for (int n = 1; n <= 8; n++) case_matmul(h, "rows", n, 72, 37, 0);
    case_matmul(h, "decode qkv", 1, 2048, 2560, 0);
    case_matmul(h, "decode fc2", 8, 16384, 2048, 0);
    case_matmul(h, "rows odd OC", 3, 2056, 1001, 0);
    case_matmul(h, "rows 9", 9, 72, 37, 0);
    case_matmul(h, "rows odd IC", 2, 75, 41, 0);
    static const int rows[] = {1, 2, 3, 5, 8, 9};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *what = rows[i] > 8 ? "cublaslt" : "gemv";
        char name[32];
        snprintf(name, sizeof name, "%s qkv", what);
        case_matmul_fwd(h, name, rows[i], 2048, 2560, 0, 0, 0);
        snprintf(name, sizeof name, "%s fc2", what);
        case_matmul_fwd(h, name, rows[i], 16384, 2048, 0, 0, 0);
        snprintf(name, sizeof name, "%s odd", what);
        case_matmul_fwd(h, name, rows[i], 37, 53, 0, 0, 0);
    }
    case_matmul_fwd(h, "gemv unaligned", 3, 2048, 2560, 1, 0, 0);
    case_matmul_fwd(h, "gemv unaligned", 1, 2048, 2560, 0, 1, 0);
    case_matmul_fwd(h, "gemv unaligned", 8, 2048, 2560, 0, 0, 1);
    case_matmul_fwd(h, "gemv unaligned", 5, 16384, 2048, 1, 1, 1);
    case_matmul_fwd(h, "gemv 7b qkv", 1, 3072, 12288, 0, 0, 0);
    case_matmul_fwd(h, "gemv 7b o", 4, 4096, 3072, 0, 0, 0);
    case_matmul_fwd(h, "gemv 7b fc2", 2, 24576, 3072, 0, 0, 0);
    if (full) case_matmul_fwd(h, "cublaslt lm_head", 1, 2048, 256000, 0, 0, 0);
    det_ctx d;
    memset(&d, 0, sizeof d);
    d.N = 8, d.C = 16384, d.V = 2048;
    d.x = pair_new(h, GT_ACT, (size_t)d.N * d.C), d.w = pair_new(h, GT_ACT, (size_t)d.V * d.C);
    d.out = pair_new(h, GT_ACT, (size_t)d.N * d.V);
    pair_fill(h, &d.x, -1, 1);
    pair_fill(h, &d.w, -0.05f, 0.05f);
    pair_poison(h, &d.out);
    check_repeatable(h, "repeatable matmul_fwd gemv", "N=8 IC=16384 OC=2048", &d.out, gemv_fc2, &d);
    pair_free(h, &d.x);
    pair_free(h, &d.w);
    pair_free(h, &d.out);
}

int main(int argc, char **argv) {
    int small = 0, bench = 0;
    uint64_t seed = (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--small"))
            small = 1;
        else if (!strcmp(argv[i], "--bench"))
            bench = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else
            GT_DIE("usage: %s [--small] [--bench] [--seed S]", argv[0]);
    }
    harness h;
    harness_open(&h, seed);
    if (bench) {
        int rc = ops_gpu_bench(&h);
        harness_close(&h);
        return rc;
    }
    printf("test_ops_gpu: seed %llu\n", (unsigned long long)seed);
    ops_report_header();
    const shapes odd = {"odd", 37, 72, 100, 4, 2, 24, 1001};
    const shapes gemma = {"gemma-2b", 4096, 2048, 16384, 8, 1, 256, 256000};
    run_shapes(&h, &odd, 0);
    run_scalar_paths(&h);
    run_fused_shapes(&h, !small);
    run_decode_gemms(&h, !small);
    if (!small) run_shapes(&h, &gemma, 1);
    printf("test_ops_gpu: %d passed, %d failed\n", h.passed, h.failed);
    harness_close(&h);
    return h.failed ? 1 : 0;
}
