/* Gradient checks of every CPU op with a backward, on the cpu64 backend (real = double).
 *
 * For each op, a random objective L = sum(out * R) (R random, fixed) is differentiated twice:
 * analytically by the op's backward with dout = R, and by central finite differences in double,
 *   dL/dx_i ~ (L(x_i + h) - L(x_i - h)) / (2h),  h = 1e-6,
 * over every element of every differentiable input and parameter. The check is the relative error
 * ||analytic - fd|| / ||fd|| <= 1e-6 over the whole gradient tensor (truncation error is O(h^2) ~
 * 1e-12 and cancellation O(1e-16 |L| / h) ~ 1e-10, so 1e-6 has a wide margin and any real bug,
 * even a missing term of one element, is far above it).
 * "+=" outputs are pre-filled with random values that are subtracted afterwards; overwritten
 * outputs are pre-filled with garbage, so both conventions of kernels/ops.h are checked too. */
#include "check.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define FD_STEP  1e-6
#define GRAD_TOL 1e-6

typedef struct {
    uint64_t s;
} rng;

/* Uniform in [-1, 1). */
static double urand(rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(r->s >> 11) * 0x1p-53 * 2.0 - 1.0;
}

static double *rand_arr(rng *r, size_t n, double scale) {
    double *a = gt_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = urand(r) * scale;
    return a;
}

static double *const_arr(size_t n, double v) {
    double *a = gt_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = v;
    return a;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* a[i] -= b[i]: removes the pre-filled part of a "+=" gradient. */
static void sub(double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] -= b[i];
}

typedef struct {
    const gt_ops *ops;
    gt_backend *be;
} env;

typedef double (*objective_fn)(void *ctx);

/* fd[i] = central difference of f with respect to x[i], for every i < n. */
static void fd_grad(objective_fn f, void *ctx, double *x, size_t n, double *fd) {
    for (size_t i = 0; i < n; i++) {
        const double x0 = x[i], xp = x0 + FD_STEP, xm = x0 - FD_STEP;
        x[i] = xp;
        const double lp = f(ctx);
        x[i] = xm;
        const double lm = f(ctx);
        x[i] = x0;
        fd[i] = (lp - lm) / (xp - xm);
    }
}

/* Compares analytic against finite differences of f over x[n]. */
static void check_grad(gt_check *c, const char *what, objective_fn f, void *ctx, double *x,
                       size_t n, const double *analytic) {
    double *fd = gt_malloc(n * sizeof(double));
    fd_grad(f, ctx, x, n, fd);
    gt_check_rel(c, gt_rel_err_d(analytic, fd, n), GRAD_TOL, what);
    free(fd);
}

/* ---- embedding ---- */
typedef struct {
    const env *e;
    const int32_t *tok;
    double *wte, *out, *R;
    float scale;
    int64_t vstart;
    int V, N, C;
} embed_ctx;

static double embed_obj(void *p) {
    embed_ctx *x = p;
    x->e->ops->embed_fwd(x->e->be, x->out, x->tok, x->wte, x->scale, x->vstart, x->V, x->N, x->C);
    return dot(x->out, x->R, (size_t)x->N * x->C);
}

/* Rows [3, 11) on this rank; tokens below and above the range; pad_id 5 (in range) twice. */
static void test_embedding(gt_check *c, const env *e, rng *r, int pad_id) {
    static const int32_t tok[] = {3, 5, 0, 10, 7, 5, 14, 1, 7, 4};
    const int N = 10, V = 8, C = 5;
    embed_ctx x = {e,
                   tok,
                   rand_arr(r, (size_t)V * C, 1),
                   const_arr((size_t)N * C, 0),
                   rand_arr(r, (size_t)N * C, 1),
                   2.5f,
                   3,
                   V,
                   N,
                   C};
    double *prior = rand_arr(r, (size_t)V * C, 1), *dw = gt_malloc((size_t)V * C * sizeof(double));
    for (int i = 0; i < V * C; i++) dw[i] = prior[i];
    e->ops->embed_bwd(e->be, dw, x.R, tok, x.scale, x.vstart, V, N, C, pad_id);
    sub(dw, prior, (size_t)V * C);
    double *fd = gt_malloc((size_t)V * C * sizeof(double));
    fd_grad(embed_obj, &x, x.wte, (size_t)V * C, fd);
    /* HF padding_idx: the pad row gets no gradient through the lookup */
    if (pad_id >= 0)
        for (int k = 0; k < C; k++) fd[(pad_id - x.vstart) * C + k] = 0;
    char what[96];
    snprintf(what, sizeof what, "embedding dwte (vstart 3, pad_id %d)", pad_id);
    gt_check_rel(c, gt_rel_err_d(dw, fd, (size_t)V * C), GRAD_TOL, what);
    free(fd), free(dw), free(prior), free(x.wte), free(x.out), free(x.R);
}

/* ---- rmsnorm ---- */
typedef struct {
    const env *e;
    double *x, *w, *out, *rstd, *R;
    float eps;
    int N, C;
} norm_ctx;

static double norm_obj(void *p) {
    norm_ctx *x = p;
    x->e->ops->rmsnorm_fwd(x->e->be, x->out, x->rstd, x->x, x->w, x->eps, x->N, x->C);
    return dot(x->out, x->R, (size_t)x->N * x->C);
}

static void test_rmsnorm(gt_check *c, const env *e, rng *r, float eps) {
    const int N = 7, C = 12;
    const size_t nx = (size_t)N * C;
    norm_ctx x = {e,
                  rand_arr(r, nx, 2),
                  rand_arr(r, (size_t)C, 0.5),
                  const_arr(nx, 0),
                  const_arr((size_t)N, 0),
                  rand_arr(r, nx, 1),
                  eps,
                  N,
                  C};
    double *px = rand_arr(r, nx, 1), *pw = rand_arr(r, (size_t)C, 1);
    double *dx = gt_malloc(nx * sizeof(double)), *dw = gt_malloc((size_t)C * sizeof(double));
    for (size_t i = 0; i < nx; i++) dx[i] = px[i];
    for (int i = 0; i < C; i++) dw[i] = pw[i];
    norm_obj(&x); /* rstd of the unperturbed input */
    e->ops->rmsnorm_bwd(e->be, dx, dw, x.R, x.x, x.w, x.rstd, N, C);
    sub(dx, px, nx);
    sub(dw, pw, (size_t)C);
    char what[96];
    snprintf(what, sizeof what, "rmsnorm dx (eps %g)", eps);
    check_grad(c, what, norm_obj, &x, x.x, nx, dx);
    snprintf(what, sizeof what, "rmsnorm dw (eps %g)", eps);
    check_grad(c, what, norm_obj, &x, x.w, (size_t)C, dw);
    free(px), free(pw), free(dx), free(dw);
    free(x.x), free(x.w), free(x.out), free(x.rstd), free(x.R);
}

/* ---- matmul ---- */
typedef struct {
    const env *e;
    double *x, *w, *y, *R;
    int N, IC, OC;
} mm_ctx;

static double mm_obj(void *p) {
    mm_ctx *m = p;
    m->e->ops->matmul_fwd(m->e->be, m->y, m->x, m->w, m->N, m->IC, m->OC);
    return dot(m->y, m->R, (size_t)m->N * m->OC);
}

static void test_matmul(gt_check *c, const env *e, rng *r) {
    const int N = 7, IC = 9, OC = 6; /* odd sizes: partial row blocks and dot-product tails */
    const size_t nx = (size_t)N * IC, nw = (size_t)OC * IC;
    mm_ctx m = {e,
                rand_arr(r, nx, 1),
                rand_arr(r, nw, 1),
                const_arr((size_t)N * OC, 0),
                rand_arr(r, (size_t)N * OC, 1),
                N,
                IC,
                OC};
    double *dx = const_arr(nx, 1e3), *pw = rand_arr(r, nw, 1), *dw = gt_malloc(nw * sizeof(double));
    double *dw2 = gt_malloc(nw * sizeof(double));
    for (size_t i = 0; i < nw; i++) dw[i] = dw2[i] = pw[i];
    e->ops->matmul_bwd(e->be, dx, dw, m.R, m.x, m.w, N, IC, OC);
    e->ops->matmul_bwd(e->be, NULL, dw2, m.R, m.x, m.w, N, IC, OC); /* dx skipped */
    sub(dw, pw, nw);
    sub(dw2, pw, nw);
    check_grad(c, "matmul dx (overwritten)", mm_obj, &m, m.x, nx, dx);
    check_grad(c, "matmul dW (+=)", mm_obj, &m, m.w, nw, dw);
    check_grad(c, "matmul dW with dx NULL", mm_obj, &m, m.w, nw, dw2);
    free(dx), free(pw), free(dw), free(dw2), free(m.x), free(m.w), free(m.y), free(m.R);
}

/* ---- rope ---- */
typedef struct {
    const env *e;
    double *qkv, *work, *R;
    const int32_t *pos;
    float theta;
    int N, Hq, Hkv, D;
} rope_ctx;

static double rope_obj(void *p) {
    rope_ctx *x = p;
    const size_t n = (size_t)x->N * (x->Hq + 2 * x->Hkv) * x->D;
    for (size_t i = 0; i < n; i++) x->work[i] = x->qkv[i]; /* the op works in place */
    x->e->ops->rope_fwd(x->e->be, x->work, x->pos, x->theta, x->N, x->Hq, x->Hkv, x->D);
    return dot(x->work, x->R, n);
}

static void test_rope(gt_check *c, const env *e, rng *r, int Hq, int Hkv, int D) {
    const int N = 14;
    int32_t pos[14];
    for (int i = 0; i < N; i++) pos[i] = (int32_t)((urand(r) + 1) * 300); /* 0..599 */
    const size_t n = (size_t)N * (Hq + 2 * Hkv) * D;
    rope_ctx x = {
        e, rand_arr(r, n, 1), const_arr(n, 0), rand_arr(r, n, 1), pos, 10000.f, N, Hq, Hkv, D};
    double *d = gt_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x.R[i];
    e->ops->rope_bwd(e->be, d, pos, x.theta, N, Hq, Hkv, D);
    char what[96];
    snprintf(what, sizeof what, "rope dqkv (Hq %d Hkv %d D %d)", Hq, Hkv, D);
    check_grad(c, what, rope_obj, &x, x.qkv, n, d);
    free(d), free(x.qkv), free(x.work), free(x.R);
}

/* ---- attention ---- */
typedef struct {
    const env *e;
    double *qkv, *out, *lse, *R;
    const int32_t *seg;
    float scale;
    int B, T, Hq, Hkv, D;
} attn_ctx;

static double attn_obj(void *p) {
    attn_ctx *a = p;
    a->e->ops->attention_fwd(a->e->be, a->out, a->lse, a->qkv, a->seg, a->scale, a->B, a->T, a->Hq,
                             a->Hkv, a->D);
    return dot(a->out, a->R, (size_t)a->B * a->T * a->Hq * a->D);
}

static void test_attention(gt_check *c, const env *e, rng *r, int B, int T, int Hq, int Hkv, int D,
                           int with_seg) {
    /* two documents and a third in row 0, a different split in row 1 */
    static const int32_t seg[] = {0, 0, 0, 1, 1, 2, 2, 5, 5, 5, 5, 7, 7, 7};
    GT_ASSERT(!with_seg || (B == 2 && T == 7), "segment ids are written for B=2, T=7");
    const size_t nqkv = (size_t)B * T * (Hq + 2 * Hkv) * D, nout = (size_t)B * T * Hq * D;
    attn_ctx a = {e,
                  rand_arr(r, nqkv, 1.5),
                  const_arr(nout, 0),
                  const_arr((size_t)B * Hq * T, 0),
                  rand_arr(r, nout, 1),
                  with_seg ? seg : NULL,
                  (float)(1.0 / sqrt(D)),
                  B,
                  T,
                  Hq,
                  Hkv,
                  D};
    attn_obj(&a); /* out and lse of the unperturbed input */
    double *d = const_arr(nqkv, -7e3);
    e->ops->attention_bwd(e->be, d, a.R, a.qkv, a.out, a.lse, a.seg, a.scale, B, T, Hq, Hkv, D);
    char what[96];
    snprintf(what, sizeof what, "attention dqkv (B%d T%d Hq%d Hkv%d D%d%s)", B, T, Hq, Hkv, D,
             with_seg ? " seg" : "");
    check_grad(c, what, attn_obj, &a, a.qkv, nqkv, d);
    free(d), free(a.qkv), free(a.out), free(a.lse), free(a.R);
}

/* ---- geglu ---- */
typedef struct {
    const env *e;
    double *a, *h, *R;
    gt_gelu kind;
    int N, F;
} geglu_ctx;

static double geglu_obj(void *p) {
    geglu_ctx *g = p;
    g->e->ops->geglu_fwd(g->e->be, g->h, g->a, g->kind, g->N, g->F);
    return dot(g->h, g->R, (size_t)g->N * g->F);
}

static void test_geglu(gt_check *c, const env *e, rng *r, gt_gelu kind) {
    const int N = 7, F = 5;
    const size_t na = (size_t)N * 2 * F;
    geglu_ctx g = {
        e, rand_arr(r, na, 3), const_arr((size_t)N * F, 0), rand_arr(r, (size_t)N * F, 1), kind, N,
        F};
    double *d = const_arr(na, 5e3);
    e->ops->geglu_bwd(e->be, d, g.R, g.a, kind, N, F);
    check_grad(c, kind == GT_GELU_TANH ? "geglu da (tanh gelu)" : "geglu da (erf gelu)", geglu_obj,
               &g, g.a, na, d);
    free(d), free(g.a), free(g.h), free(g.R);
}

/* ---- cross-entropy ---- */
typedef struct {
    const env *e;
    double *logits, *part, *lse;
    const int32_t *target;
    double dscale;
    int V, N;
} ce_ctx;

/* L = dscale * loss_sum, so dL/dlogits is ce_backward's output with this dscale. */
static double ce_obj(void *p) {
    ce_ctx *x = p;
    double loss = 0;
    x->e->ops->ce_partial(x->e->be, x->part, x->logits, x->target, 0, x->V, x->N);
    x->e->ops->ce_finish(x->e->be, x->lse, &loss, x->part, x->target, 1, x->N);
    return x->dscale * loss;
}

/* The vocabulary split over two emulated tp ranks: columns [0, V1) and [V1, V). Returns lse and
 * loss of ce_finish(tp=2) and the two ranks' dlogits reassembled into dl[N, V]. */
static double ce_tp2(const env *e, const double *logits, const int32_t *target, int N, int V,
                     int V1, double dscale, double *lse, double *dl) {
    const int V2 = V - V1;
    double *s1 = gt_malloc((size_t)N * V1 * sizeof(double)),
           *s2 = gt_malloc((size_t)N * V2 * sizeof(double));
    double *parts = gt_malloc((size_t)2 * N * 3 * sizeof(double)), loss = 0;
    for (int n = 0; n < N; n++)
        for (int v = 0; v < V; v++) {
            if (v < V1)
                s1[(size_t)n * V1 + v] = logits[(size_t)n * V + v];
            else
                s2[(size_t)n * V2 + v - V1] = logits[(size_t)n * V + v];
        }
    e->ops->ce_partial(e->be, parts, s1, target, 0, V1, N);
    e->ops->ce_partial(e->be, parts + (size_t)N * 3, s2, target, V1, V2, N);
    e->ops->ce_finish(e->be, lse, &loss, parts, target, 2, N);
    e->ops->ce_backward(e->be, s1, s1, target, lse, (float)dscale, 0, V1, N); /* in place */
    e->ops->ce_backward(e->be, s2, s2, target, lse, (float)dscale, V1, V2, N);
    for (int n = 0; n < N; n++)
        for (int v = 0; v < V; v++)
            dl[(size_t)n * V + v] = v < V1 ? s1[(size_t)n * V1 + v] : s2[(size_t)n * V2 + v - V1];
    free(s1), free(s2), free(parts);
    return loss;
}

static void test_cross_entropy(gt_check *c, const env *e, rng *r) {
    static const int32_t target[] = {3, -100, 0, 10, 5, -100, 7};
    const int N = 7, V = 11;
    const size_t nl = (size_t)N * V;
    ce_ctx x = {e,
                rand_arr(r, nl, 3),
                const_arr((size_t)N * 3, 0),
                const_arr((size_t)N, 0),
                target,
                0.37f,
                V,
                N};
    const double loss1 = ce_obj(&x) / x.dscale;
    double *d = const_arr(nl, 9e3);
    e->ops->ce_backward(e->be, d, x.logits, target, x.lse, (float)x.dscale, 0, V, N);
    check_grad(c, "cross-entropy dlogits (tp 1, -100 targets)", ce_obj, &x, x.logits, nl, d);
    ce_obj(&x); /* lse of the unperturbed logits again */

    double *lse2 = const_arr((size_t)N, 0), *d2 = const_arr(nl, 0);
    const double loss2 = ce_tp2(e, x.logits, target, N, V, 5, x.dscale, lse2, d2);
    gt_check_rel(c, fabs(loss2 - loss1) / fabs(loss1), 1e-14, "cross-entropy loss tp 2 == tp 1");
    gt_check_rel(c, gt_rel_err_d(lse2, x.lse, (size_t)N), 1e-14, "cross-entropy lse tp 2 == tp 1");
    gt_check_rel(c, gt_rel_err_d(d2, d, nl), 1e-14,
                 "cross-entropy dlogits tp 2 (in place) == tp 1");
    free(lse2), free(d2), free(d), free(x.logits), free(x.part), free(x.lse);
}

int main(void) {
    gt_check c = {0, 0};
    rng r = {12345};
    env e = {gt_cpu64_ops(), gt_cpu_backend_create()};
    printf("finite differences: h = %g, tolerance %g (relative, whole gradient)\n", FD_STEP,
           GRAD_TOL);
    test_embedding(&c, &e, &r, 5);
    test_embedding(&c, &e, &r, -1);
    test_rmsnorm(&c, &e, &r, 1e-6f);
    test_rmsnorm(&c, &e, &r, 0.5f);
    test_matmul(&c, &e, &r);
    test_rope(&c, &e, &r, 4, 2, 8);
    test_rope(&c, &e, &r, 3, 1, 6);
    test_rope(&c, &e, &r, 2, 2, 4);
    for (int s = 0; s <= 1; s++) {
        test_attention(&c, &e, &r, 2, 7, 3, 3, 6, s);  /* MHA */
        test_attention(&c, &e, &r, 2, 7, 4, 2, 6, s);  /* GQA */
        test_attention(&c, &e, &r, 2, 7, 4, 1, 10, s); /* MQA */
    }
    test_attention(&c, &e, &r, 1, 9, 2, 1, 4, 0);
    test_geglu(&c, &e, &r, GT_GELU_TANH);
    test_geglu(&c, &e, &r, GT_GELU_ERF);
    test_cross_entropy(&c, &e, &r);
    gt_cpu_backend_destroy(e.be);
    return gt_check_done(&c, "test_ops_grad");
}
