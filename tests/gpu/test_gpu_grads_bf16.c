/* bf16 parameter gradients (ops.h set_grad_bf16, optim.grads=bf16): every op that writes or reads
 * a parameter gradient on the "cuda" backend with bf16 gradients against the "cpu" oracle with the
 * same switch (gradients rounded to bf16 precision at every write), from the same bf16-rounded
 * inputs. Gradients are ACT pairs here (bf16 on the GPU, bf16-valued floats on the CPU).
 *   - embed_bwd, rmsnorm_bwd dw, matmul_bwd dW (overwritten, then accumulated: a second
 *     micro-batch), matmul_fp8's wgrad (out_grad, overwritten and accumulated): both sides round
 *     an fp32 sum once, so they differ only where the sums differ in the bits that decide the
 *     rounding: relative-norm error within TOL (a few such elements of one bf16 ulp, 2^-8);
 *   - grad_sumsq over bf16 gradients (16-byte path and scalar tail): fp32 sums of the same values;
 *   - adamw reading bf16 gradients with each optim.state: as test_ops_gpu's cases.
 * Prints a table; exits non-zero on any FAIL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops_gpu_harness.h"

#define TOL_GRAD 5e-3 /* rel-norm: a bf16 ulp is 2^-8 relative at worst, and few elements differ */
#define TOL_F32 1e-5

static void case_embed_bwd(harness *h, int N, int C, int V) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d V=%d", N, C, V);
    int32_t *tok_h = gt_malloc((size_t)N * sizeof *tok_h);
    for (int i = 0; i < N; i++) tok_h[i] = ops_rng_int(h, 0, 10) < 6 ? ops_rng_int(h, 0, 8) : ops_rng_int(h, 0, V);
    ipair tok = ipair_new(h, tok_h, (size_t)N);
    pair dout = pair_new(h, GT_ACT, (size_t)N * C), dwte = pair_new(h, GT_ACT, (size_t)V * C);
    pair_fill(h, &dout, -1, 1);
    pair_fill(h, &dwte, -1, 1);
    float scale = gt_round_bf16(45.25f);
    h->cpu->embed_bwd(h->cbe, dwte.c, dout.c, tok.c, scale, 0, V, N, C, 0);
    h->gpu->embed_bwd(h->gbe, dwte.g, dout.g, tok.g, scale, 0, V, N, C, 0);
    ops_report(h, "embed_bwd bf16 dwte +=", shape, pair_err(h, &dwte), TOL_GRAD);
    pair_free(h, &dout);
    pair_free(h, &dwte);
    ipair_free(h, &tok);
    free(tok_h);
}

static void case_rmsnorm_bwd(harness *h, int N, int C) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d", N, C);
    pair x = pair_new(h, GT_ACT, (size_t)N * C), w = pair_new(h, GT_ACT, (size_t)C);
    pair y = pair_new(h, GT_ACT, (size_t)N * C), rstd = pair_new(h, GT_STAT, (size_t)N);
    pair dy = pair_new(h, GT_ACT, (size_t)N * C), dx = pair_new(h, GT_ACT, (size_t)N * C);
    pair dw = pair_new(h, GT_ACT, (size_t)C);
    pair_fill(h, &x, -2, 2);
    pair_fill(h, &w, -0.5f, 0.5f);
    pair_fill(h, &dy, -1, 1);
    pair_fill(h, &dx, -0.1f, 0.1f);
    pair_fill(h, &dw, -1, 1);
    /* rstd from each side's own forward, as in training */
    h->cpu->rmsnorm_fwd(h->cbe, y.c, rstd.c, x.c, w.c, 1e-6f, N, C);
    h->gpu->rmsnorm_fwd(h->gbe, y.g, rstd.g, x.g, w.g, 1e-6f, N, C);
    h->cpu->rmsnorm_bwd(h->cbe, dx.c, dw.c, dy.c, x.c, w.c, rstd.c, N, C);
    h->gpu->rmsnorm_bwd(h->gbe, dx.g, dw.g, dy.g, x.g, w.g, rstd.g, N, C);
    ops_report(h, "rmsnorm_bwd bf16 dw +=", shape, pair_err(h, &dw), TOL_GRAD);
    pair *all[] = {&x, &w, &y, &rstd, &dy, &dx, &dw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(h, all[i]);
}

/* dW written by a first micro-batch (set_dw_accumulate(0)), then a second added to it. */
static void case_wgrad(harness *h, int N, int IC, int OC) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d IC=%d OC=%d", N, IC, OC);
    pair x = pair_new(h, GT_ACT, (size_t)N * IC), w = pair_new(h, GT_ACT, (size_t)OC * IC);
    pair dy = pair_new(h, GT_ACT, (size_t)N * OC), dw = pair_new(h, GT_ACT, (size_t)OC * IC);
    pair_fill(h, &w, -0.05f, 0.05f);
    pair_poison(h, &dw);
    const char *what[2] = {"matmul_bwd bf16 dW =", "matmul_bwd bf16 dW +="};
    for (int k = 0; k < 2; k++) {
        pair_fill(h, &x, -1, 1);
        pair_fill(h, &dy, -1, 1);
        h->cpu->set_dw_accumulate(h->cbe, k);
        h->gpu->set_dw_accumulate(h->gbe, k);
        h->cpu->matmul_bwd(h->cbe, NULL, dw.c, dy.c, x.c, w.c, N, IC, OC);
        h->gpu->matmul_bwd(h->gbe, NULL, dw.g, dy.g, x.g, w.g, N, IC, OC);
        ops_report(h, what[k], shape, pair_err(h, &dw), TOL_GRAD);
    }
    pair_free(h, &x);
    pair_free(h, &w);
    pair_free(h, &dy);
    pair_free(h, &dw);
}

/* The FP8 wgrad: D[M,N] (=, then +=) of E5M2 A[M,K] and E4M3 B[N,K], cast from the same bf16 values
 * on both sides by each side's fp8_cast (the same rounding rule: the same bytes). */
static void case_wgrad_fp8(harness *h, int M, int N, int K) {
    char shape[64];
    snprintf(shape, sizeof shape, "M=%d N=%d K=%d", M, N, K);
    pair a = pair_new(h, GT_ACT, (size_t)M * K), b = pair_new(h, GT_ACT, (size_t)N * K);
    pair a8 = pair_new(h, GT_ACT, ((size_t)M * K + 1) / 2), b8 = pair_new(h, GT_ACT, ((size_t)N * K + 1) / 2);
    pair sc = pair_new(h, GT_STAT, 4), d = pair_new(h, GT_ACT, (size_t)M * N);
    float s[4] = {1.0f, 1.0f, 0.0f, 0.0f}; /* scale, scale_inv, amax a, amax b */
    pair_set(h, &sc, s);
    pair_poison(h, &d);
    const char *what[2] = {"matmul_fp8 bf16 dW =", "matmul_fp8 bf16 dW +="};
    for (int k = 0; k < 2; k++) {
        pair_fill(h, &a, -1, 1);
        pair_fill(h, &b, -1, 1);
        float *cs = sc.c, *gs = sc.g;
        h->cpu->fp8_cast(h->cbe, a8.c, NULL, a.c, M, K, GT_E5M2, cs, cs + 2);
        h->cpu->fp8_cast(h->cbe, b8.c, NULL, b.c, N, K, GT_E4M3, cs, cs + 3);
        h->gpu->fp8_cast(h->gbe, a8.g, NULL, a.g, M, K, GT_E5M2, gs, gs + 2);
        h->gpu->fp8_cast(h->gbe, b8.g, NULL, b.g, N, K, GT_E4M3, gs, gs + 3);
        h->cpu->set_dw_accumulate(h->cbe, k);
        h->gpu->set_dw_accumulate(h->gbe, k);
        h->cpu->matmul_fp8(h->cbe, d.c, 1, a8.c, GT_E5M2, cs + 1, b8.c, GT_E4M3, cs + 1, M, N, K, 0);
        h->gpu->matmul_fp8(h->gbe, d.g, 1, a8.g, GT_E5M2, gs + 1, b8.g, GT_E4M3, gs + 1, M, N, K, 0);
        ops_report(h, what[k], shape, pair_err(h, &d), TOL_GRAD);
    }
    pair *all[] = {&a, &b, &a8, &b8, &sc, &d};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(h, all[i]);
}

static void case_sumsq(harness *h, size_t n, int misalign) {
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu%s", n, misalign ? " (unaligned)" : "");
    pair g = pair_new(h, GT_ACT, n + 1), ss = pair_new(h, GT_STAT, 1);
    float init = 1.25f;
    pair_fill(h, &g, -1, 1);
    pair_set(h, &ss, &init);
    size_t o = misalign ? 1 : 0;
    h->cpu->grad_sumsq(h->cbe, ss.c, (float *)g.c + o, n);
    h->gpu->grad_sumsq(h->gbe, ss.g, (uint16_t *)g.g + o, n);
    ops_report(h, "grad_sumsq bf16 +=", shape, pair_err(h, &ss), TOL_F32);
    pair_free(h, &g);
    pair_free(h, &ss);
}

/* Three AdamW steps from bf16 gradients: the fp32 state (master, m, v fp32: GRAD pairs), or the
 * lean ones (m, v bf16: ACT pairs), each compared as test_ops_gpu compares them. */
static void case_adamw(harness *h, size_t n, int state) {
    char shape[64], name[96];
    snprintf(shape, sizeof shape, "n=%zu", n);
    static const char *names[] = {"fp32", "bf16_moments", "bf16"};
    gt_kind mk = state == GT_OPT_FP32 ? GT_GRAD : GT_ACT;
    int own = state == GT_OPT_BF16;
    pair g = pair_new(h, GT_ACT, n), p = pair_new(h, GT_ACT, n), master = pair_new(h, GT_GRAD, n);
    pair m = pair_new(h, mk, n), v = pair_new(h, mk, n);
    float *init = gt_malloc(n * sizeof(float));
    pair_fill(h, &g, -1, 1);
    for (size_t i = 0; i < n; i++) init[i] = gt_round_bf16(ops_rng_uniform(h, -1, 1));
    pair_set(h, &p, init);
    pair_set(h, &master, init);
    for (size_t i = 0; i < n; i++) init[i] = gt_round_bf16(ops_rng_uniform(h, -0.01f, 0.01f));
    pair_set(h, &m, init);
    for (size_t i = 0; i < n; i++) init[i] = gt_round_bf16(ops_rng_uniform(h, 0, 1e-4f));
    pair_set(h, &v, init);
    gt_adamw_args args = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 1, state, 1234, 777};
    for (args.step = 1; args.step <= 3; args.step++) {
        h->cpu->adamw(h->cbe, p.c, own ? NULL : master.c, m.c, v.c, g.c, n, &args);
        h->gpu->adamw(h->gbe, p.g, own ? NULL : master.g, m.g, v.g, g.g, n, &args);
    }
    double tol_mv = state == GT_OPT_FP32 ? TOL_F32 : TOL_GRAD;
    if (!own) {
        snprintf(name, sizeof name, "adamw %s bf16 grads master", names[state]);
        ops_report(h, name, shape, pair_err(h, &master), TOL_F32);
    }
    snprintf(name, sizeof name, "adamw %s bf16 grads m", names[state]);
    ops_report(h, name, shape, pair_err(h, &m), tol_mv);
    snprintf(name, sizeof name, "adamw %s bf16 grads v", names[state]);
    ops_report(h, name, shape, pair_err(h, &v), tol_mv);
    snprintf(name, sizeof name, "adamw %s bf16 grads param", names[state]);
    ops_report(h, name, shape, pair_err(h, &p), TOL_GRAD);
    free(init);
    pair *all[] = {&g, &p, &master, &m, &v};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(h, all[i]);
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 2 && !strcmp(argv[1], "--seed") ? strtoull(argv[2], NULL, 10) : (uint64_t)time(NULL);
    harness h;
    harness_open(&h, seed);
    h.cpu->set_grad_bf16(h.cbe, 1);
    h.gpu->set_grad_bf16(h.gbe, 1);
    printf("test_gpu_grads_bf16: seed %llu\n", (unsigned long long)seed);
    ops_report_header();
    case_embed_bwd(&h, 37, 75, 300);    /* scalar path */
    case_embed_bwd(&h, 4096, 2048, 8192);
    case_rmsnorm_bwd(&h, 37, 75);
    case_rmsnorm_bwd(&h, 4096, 2048);
    case_rmsnorm_bwd(&h, 9, 3072);
    case_wgrad(&h, 37, 75, 41);
    case_wgrad(&h, 512, 2048, 512);
    case_wgrad_fp8(&h, 256, 512, 512);
    case_sumsq(&h, 1001, 0);
    case_sumsq(&h, ((size_t)1 << 22) + 3, 0);
    case_sumsq(&h, 4099, 1);
    for (int s = GT_OPT_FP32; s <= GT_OPT_BF16; s++) {
        case_adamw(&h, 1001, s);
        case_adamw(&h, ((size_t)1 << 22) + 3, s);
    }
    printf("test_gpu_grads_bf16: %d passed, %d failed\n", h.passed, h.failed);
    harness_close(&h);
    return h.failed ? 1 : 0;
}
