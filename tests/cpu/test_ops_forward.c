/* Forward checks of the CPU ops against naive formulas written here in double, independently of
 * kernels/cpu (explicit score matrices, closed forms, log-softmax, the AdamW formula), and
 * agreement of the float backend ("cpu") with the double one ("cpu64").
 *
 * Inputs are random values representable in float, so both backends see the same numbers. Each op
 * is run through the gt_ops table with its own memory ops (alloc, upload, download), and checked as
 *   cpu64 vs naive   relative error <= a tolerance near double rounding (stated per check)
 *   cpu   vs cpu64   relative error <= 1e-5
 * (relative error = ||a - b|| / ||b|| over the whole output). */
#include "check.h"
#include "kernels/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define F32_TOL 1e-5

typedef struct {
    uint64_t s;
} rng;

/* Uniform in [-scale, scale), rounded to float. */
static double frand(rng *r, double scale) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(float)(((double)(r->s >> 11) * 0x1p-53 * 2.0 - 1.0) * scale);
}

static double *rand_arr(rng *r, size_t n, double scale) {
    double *a = gt_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = frand(r, scale);
    return a;
}

static double *zeros(size_t n) { return gt_calloc(n, sizeof(double)); }

typedef struct {
    const gt_ops *ops;
    gt_backend *be;
} env;

/* A backend buffer holding src[n] (converted to the backend's real). */
static void *put(const env *e, const double *src, size_t n) {
    const size_t sz = e->ops->size[GT_ACT];
    void *d = e->ops->alloc(e->be, n * sz);
    if (sz == sizeof(double)) {
        e->ops->upload_raw(e->be, d, src, n * sz);
    } else {
        float *f = gt_malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) f[i] = (float)src[i];
        e->ops->upload(e->be, GT_ACT, d, f, n);
        free(f);
    }
    return d;
}

/* dst[n] = the backend buffer src; then releases src. */
static void take(const env *e, double *dst, void *src, size_t n) {
    const size_t sz = e->ops->size[GT_ACT];
    if (sz == sizeof(double)) {
        e->ops->download_raw(e->be, dst, src, n * sz);
    } else {
        float *f = gt_malloc(n * sizeof(float));
        e->ops->download(e->be, GT_ACT, f, src, n);
        for (size_t i = 0; i < n; i++) dst[i] = f[i];
        free(f);
    }
    e->ops->release(e->be, src);
}

typedef struct {
    gt_check *c;
    env e64, e32;
} suite;

static void compare(suite *s, const char *what, const double *naive, const double *r64,
                    const double *r32, size_t n, double tol64) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: cpu64 vs naive", what);
    gt_check_rel(s->c, gt_rel_err_d(r64, naive, n), tol64, msg);
    snprintf(msg, sizeof msg, "%s: cpu vs cpu64", what);
    gt_check_rel(s->c, gt_rel_err_d(r32, r64, n), F32_TOL, msg);
}

/* ---- memory and elementwise: exact ---- */
static void test_memory(suite *s, const env *e, rng *r) {
    enum { n = 37 };
    double *a = rand_arr(r, n, 2), *b = rand_arr(r, n, 2), out[n], back[n];
    void *da = put(e, a, n), *db = put(e, b, n),
         *dc = e->ops->alloc(e->be, n * e->ops->size[GT_ACT]);
    e->ops->copy(e->be, dc, da, n * e->ops->size[GT_ACT]);
    e->ops->add(e->be, da, da, db, n);    /* out aliases a */
    e->ops->accumulate(e->be, db, dc, n); /* b + a, the same sums */
    take(e, out, da, n);
    take(e, back, db, n);
    const int is_float = e->ops->size[GT_ACT] == sizeof(float);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        const double sum = is_float ? (double)(float)(a[i] + b[i]) : a[i] + b[i];
        ok &= out[i] == sum && back[i] == sum;
    }
    gt_check_true(s->c, ok, "%s: copy/add/accumulate exact", e->ops->name);
    e->ops->zero(e->be, dc, n * e->ops->size[GT_ACT]);
    take(e, out, dc, n);
    ok = 1;
    for (int i = 0; i < n; i++) ok &= out[i] == 0;
    gt_check_true(s->c, ok, "%s: zero", e->ops->name);
    printf("ok   %s: memory and elementwise ops\n", e->ops->name);
    free(a), free(b);
}

/* ---- embedding ---- */
static void run_embed(const env *e, double *out, const int32_t *tok, const double *wte, float scale,
                      int64_t vstart, int V, int N, int C) {
    void *w = put(e, wte, (size_t)V * C), *o = put(e, out, (size_t)N * C);
    e->ops->embed_fwd(e->be, o, tok, w, scale, vstart, V, N, C);
    take(e, out, o, (size_t)N * C);
    e->ops->release(e->be, w);
}

static void test_embedding(suite *s, rng *r) {
    static const int32_t tok[] = {3, 5, 0, 10, 7, 2, 11, 4};
    const int N = 8, V = 8, C = 6;
    const int64_t vstart = 3;
    const float scale = 45.25f; /* sqrt(2048) in bf16 */
    double *wte = rand_arr(r, (size_t)V * C, 1), *ref = zeros((size_t)N * C);
    double *o64 = rand_arr(r, (size_t)N * C, 1), *o32 = rand_arr(r, (size_t)N * C, 1);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < C && tok[n] >= vstart && tok[n] < vstart + V; k++)
            ref[n * C + k] = wte[(tok[n] - vstart) * C + k] * scale;
    run_embed(&s->e64, o64, tok, wte, scale, vstart, V, N, C);
    run_embed(&s->e32, o32, tok, wte, scale, vstart, V, N, C);
    compare(s, "embedding (other ranks' rows zero)", ref, o64, o32, (size_t)N * C, 0);
    free(wte), free(ref), free(o64), free(o32);
}

/* ---- rmsnorm ---- */
static void run_rmsnorm(const env *e, double *y, double *rstd, const double *x, const double *w,
                        float eps, int N, int C) {
    void *dx = put(e, x, (size_t)N * C), *dw = put(e, w, (size_t)C);
    void *dy = put(e, y, (size_t)N * C), *dr = put(e, rstd, (size_t)N);
    e->ops->rmsnorm_fwd(e->be, dy, dr, dx, dw, eps, N, C);
    take(e, y, dy, (size_t)N * C);
    take(e, rstd, dr, (size_t)N);
    e->ops->release(e->be, dx);
    e->ops->release(e->be, dw);
}

static void test_rmsnorm(suite *s, rng *r) {
    const int N = 9, C = 64;
    const float eps = 1e-6f;
    double *x = rand_arr(r, (size_t)N * C, 3), *w = rand_arr(r, (size_t)C, 0.5);
    double *ref = zeros((size_t)N * C), *rref = zeros((size_t)N);
    double *y64 = zeros((size_t)N * C), *y32 = zeros((size_t)N * C), *r64 = zeros((size_t)N),
           *r32 = zeros((size_t)N);
    for (int n = 0; n < N; n++) {
        double ms = 0;
        for (int k = 0; k < C; k++) ms += x[n * C + k] * x[n * C + k] / C;
        rref[n] = 1 / sqrt(ms + eps);
        for (int k = 0; k < C; k++) ref[n * C + k] = x[n * C + k] / sqrt(ms + eps) * (1 + w[k]);
    }
    run_rmsnorm(&s->e64, y64, r64, x, w, eps, N, C);
    run_rmsnorm(&s->e32, y32, r32, x, w, eps, N, C);
    compare(s, "rmsnorm y", ref, y64, y32, (size_t)N * C, 1e-14);
    compare(s, "rmsnorm rstd", rref, r64, r32, (size_t)N, 1e-14);
    free(x), free(w), free(ref), free(rref), free(y64), free(y32), free(r64), free(r32);
}

/* ---- matmul ---- */
static void run_matmul(const env *e, double *y, const double *x, const double *w, int N, int IC,
                       int OC) {
    void *dx = put(e, x, (size_t)N * IC), *dw = put(e, w, (size_t)OC * IC);
    void *dy = put(e, y, (size_t)N * OC);
    e->ops->matmul_fwd(e->be, dy, dx, dw, N, IC, OC);
    take(e, y, dy, (size_t)N * OC);
    e->ops->release(e->be, dx);
    e->ops->release(e->be, dw);
}

static void test_matmul(suite *s, rng *r) {
    const int N = 13, IC = 37, OC = 11;
    double *x = rand_arr(r, (size_t)N * IC, 1), *w = rand_arr(r, (size_t)OC * IC, 1);
    double *ref = zeros((size_t)N * OC), *y64 = zeros((size_t)N * OC), *y32 = zeros((size_t)N * OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < IC; k++) ref[n * OC + o] += x[n * IC + k] * w[o * IC + k];
    run_matmul(&s->e64, y64, x, w, N, IC, OC);
    run_matmul(&s->e32, y32, x, w, N, IC, OC);
    compare(s, "matmul y = x W^T", ref, y64, y32, (size_t)N * OC, 1e-14);
    free(x), free(w), free(ref), free(y64), free(y32);
}

/* ---- rope ---- */
static void run_rope(const env *e, double *qkv, const int32_t *pos, float theta, int N, int Hq,
                     int Hkv, int D) {
    const size_t n = (size_t)N * (Hq + 2 * Hkv) * D;
    void *d = put(e, qkv, n);
    e->ops->rope_fwd(e->be, d, pos, theta, N, Hq, Hkv, D);
    take(e, qkv, d, n);
}

/* Rotates every q and k head of ref[N, W] by angle(p, i) = p * inv_freq(i); float_angles selects
 * HF's float32 angle (float inv_freq, float product) instead of the exact double angle. */
static void naive_rope(double *ref, const int32_t *pos, float theta, int N, int Hq, int Hkv, int D,
                       int float_angles) {
    const int G = Hq / Hkv, W = (Hq + 2 * Hkv) * D, half = D / 2;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < Hkv; g++)
            for (int j = 0; j <= G; j++) { /* j == G is k_g; v_g (j == G + 1) is left alone */
                double *x = ref + n * W + (g * (G + 2) + j) * D;
                for (int i = 0; i < half; i++) {
                    double a = pos[n] * pow(theta, -2.0 * i / D);
                    if (float_angles)
                        a = (float)pos[n] * (1.0f / powf(theta, (float)(2 * i) / (float)D));
                    const double x1 = x[i], x2 = x[i + half];
                    x[i] = x1 * cos(a) - x2 * sin(a);
                    x[i + half] = x2 * cos(a) + x1 * sin(a);
                }
            }
}

static void test_rope_formula(suite *s, rng *r, int Hq, int Hkv, int D) {
    enum { N = 6 };
    static const int32_t pos[N] = {0, 1, 7, 12, 30, 47};
    const size_t n = (size_t)N * (Hq + 2 * Hkv) * D;
    double *x = rand_arr(r, n, 1), *ref = zeros(n), *y64 = zeros(n), *y32 = zeros(n);
    for (size_t i = 0; i < n; i++) ref[i] = y64[i] = y32[i] = x[i];
    naive_rope(ref, pos, 10000.f, N, Hq, Hkv, D, 0);
    run_rope(&s->e64, y64, pos, 10000.f, N, Hq, Hkv, D);
    run_rope(&s->e32, y32, pos, 10000.f, N, Hq, Hkv, D);
    char what[96];
    snprintf(what, sizeof what, "rope (Hq %d Hkv %d D %d, v untouched)", Hq, Hkv, D);
    compare(s, what, ref, y64, y32, n, 1e-14);
    free(x), free(ref), free(y64), free(y32);
}

/* HF computes angles in float32: at large positions they differ from exact angles by ~1e-4, and the
 * float backend must follow float32 (the cpu64 backend uses exact double angles by design). */
static void test_rope_float_angles(suite *s, rng *r) {
    enum { N = 3, Hq = 1, Hkv = 1, D = 16 };
    static const int32_t pos[N] = {4093, 7777, 8190};
    const size_t n = (size_t)N * (Hq + 2 * Hkv) * D;
    double *x = rand_arr(r, n, 1), *ref = zeros(n), *exact = zeros(n), *y32 = zeros(n);
    for (size_t i = 0; i < n; i++) ref[i] = exact[i] = y32[i] = x[i];
    naive_rope(ref, pos, 10000.f, N, Hq, Hkv, D, 1);
    naive_rope(exact, pos, 10000.f, N, Hq, Hkv, D, 0);
    run_rope(&s->e32, y32, pos, 10000.f, N, Hq, Hkv, D);
    printf("     rope at positions ~8k: float32 angles vs exact angles differ by %.2e\n",
           gt_rel_err_d(ref, exact, n));
    gt_check_rel(s->c, gt_rel_err_d(y32, ref, n), 1e-6,
                 "rope: cpu at positions ~8k vs float32 angles");
    free(x), free(ref), free(exact), free(y32);
}

/* q . k after rotation depends only on the position difference: rows (p, p') and (p+s, p'+s)
 * carry the same q and k, and every q head's rotated dot product with k must agree. */
static double rope_relative(const env *e, rng *r, int p, int p2, int shift) {
    enum { Hq = 2, Hkv = 1, D = 32, W = (Hq + 2 * Hkv) * D };
    const int32_t pos[4] = {p, p2, p + shift, p2 + shift};
    double *x = rand_arr(r, (size_t)W, 1), *y = rand_arr(r, (size_t)W, 1), qkv[4 * W];
    for (int k = 0; k < W; k++) qkv[k] = qkv[2 * W + k] = x[k], qkv[W + k] = qkv[3 * W + k] = y[k];
    run_rope(e, qkv, pos, 10000.f, 4, Hq, Hkv, D);
    double d0[Hq], d1[Hq];
    for (int h = 0; h < Hq; h++) {
        d0[h] = d1[h] = 0;
        for (int k = 0; k < D; k++) {
            d0[h] += qkv[h * D + k] * qkv[W + Hq * D + k];
            d1[h] += qkv[2 * W + h * D + k] * qkv[3 * W + Hq * D + k];
        }
    }
    free(x), free(y);
    return gt_rel_err_d(d1, d0, Hq);
}

static void test_rope_relative(suite *s, rng *r) {
    gt_check_rel(s->c, rope_relative(&s->e64, r, 3, 11, 29), 1e-13,
                 "rope q.k depends on p - p' (cpu64)");
    gt_check_rel(s->c, rope_relative(&s->e32, r, 3, 11, 29), F32_TOL,
                 "rope q.k depends on p - p' (cpu)");
}

/* ---- attention ---- */
typedef struct {
    int B, T, Hq, Hkv, D;
    const int32_t *seg;
    float scale;
} attn_shape;

static void run_attention(const env *e, double *out, double *lse, const double *qkv,
                          const attn_shape *a) {
    const size_t nq = (size_t)a->B * a->T * (a->Hq + 2 * a->Hkv) * a->D;
    const size_t no = (size_t)a->B * a->T * a->Hq * a->D, nl = (size_t)a->B * a->Hq * a->T;
    void *dq = put(e, qkv, nq), *dout = put(e, out, no), *dl = put(e, lse, nl);
    e->ops->attention_fwd(e->be, dout, dl, dq, a->seg, a->scale, a->B, a->T, a->Hq, a->Hkv, a->D);
    take(e, out, dout, no);
    take(e, lse, dl, nl);
    e->ops->release(e->be, dq);
}

/* Explicit [T, T] score matrix per (b, h): masked scores are -inf, softmax by rows, O = P V. */
static void naive_attention(double *out, double *lse, const double *qkv, const attn_shape *a) {
    const int T = a->T, D = a->D, G = a->Hq / a->Hkv, W = (a->Hq + 2 * a->Hkv) * D;
    double *S = gt_malloc((size_t)T * T * sizeof(double));
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->Hq; h++) {
            const int g = h / G, qc = (g * (G + 2) + h % G) * D, kc = (g * (G + 2) + G) * D;
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    const int same = !a->seg || a->seg[b * T + i] == a->seg[b * T + j];
                    double sc = 0;
                    for (int d = 0; d < D; d++)
                        sc += qkv[(b * T + i) * W + qc + d] * qkv[(b * T + j) * W + kc + d];
                    S[i * T + j] = (j <= i && same) ? sc * a->scale : -INFINITY;
                }
            for (int i = 0; i < T; i++) {
                double m = -INFINITY, z = 0;
                for (int j = 0; j < T; j++) m = fmax(m, S[i * T + j]);
                for (int j = 0; j < T; j++) z += exp(S[i * T + j] - m);
                lse[(b * a->Hq + h) * T + i] = m + log(z);
                for (int d = 0; d < D; d++) {
                    double o = 0;
                    for (int j = 0; j < T; j++)
                        o += exp(S[i * T + j] - m) / z * qkv[(b * T + j) * W + kc + D + d];
                    out[(b * T + i) * a->Hq * D + h * D + d] = o;
                }
            }
        }
    free(S);
}

static void test_attention(suite *s, rng *r, int B, int T, int Hq, int Hkv, int D, int with_seg) {
    static const int32_t seg[] = {0, 0, 0, 1, 1, 2, 2, 5, 5, 5, 5, 7, 7, 7};
    GT_ASSERT(!with_seg || (B == 2 && T == 7), "segment ids are written for B=2, T=7");
    attn_shape a = {B, T, Hq, Hkv, D, with_seg ? seg : NULL, (float)(1.0 / sqrt(D))};
    const size_t nq = (size_t)B * T * (Hq + 2 * Hkv) * D, no = (size_t)B * T * Hq * D,
                 nl = (size_t)B * Hq * T;
    double *qkv = rand_arr(r, nq, 2), *ref = zeros(no), *lref = zeros(nl);
    double *o64 = zeros(no), *o32 = zeros(no), *l64 = zeros(nl), *l32 = zeros(nl);
    naive_attention(ref, lref, qkv, &a);
    run_attention(&s->e64, o64, l64, qkv, &a);
    run_attention(&s->e32, o32, l32, qkv, &a);
    char what[96];
    snprintf(what, sizeof what, "attention out (B%d T%d Hq%d Hkv%d D%d%s)", B, T, Hq, Hkv, D,
             with_seg ? " seg" : "");
    compare(s, what, ref, o64, o32, no, 1e-13);
    snprintf(what, sizeof what, "attention lse (B%d T%d Hq%d Hkv%d D%d%s)", B, T, Hq, Hkv, D,
             with_seg ? " seg" : "");
    compare(s, what, lref, l64, l32, nl, 1e-13);
    free(qkv), free(ref), free(lref), free(o64), free(o32), free(l64), free(l32);
}

/* ---- geglu ---- */
static void run_geglu(const env *e, double *h, const double *a, gt_gelu kind, int N, int F) {
    void *da = put(e, a, (size_t)N * 2 * F), *dh = put(e, h, (size_t)N * F);
    e->ops->geglu_fwd(e->be, dh, da, kind, N, F);
    take(e, h, dh, (size_t)N * F);
    e->ops->release(e->be, da);
}

static void test_geglu(suite *s, rng *r, gt_gelu kind) {
    const int N = 9, F = 21;
    const double pi = 3.14159265358979323846;
    double *a = rand_arr(r, (size_t)N * 2 * F, 4), *ref = zeros((size_t)N * F);
    double *h64 = zeros((size_t)N * F), *h32 = zeros((size_t)N * F);
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            const double x = a[n * 2 * F + f], up = a[n * 2 * F + F + f];
            const double gl = kind == GT_GELU_TANH
                                  ? 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x * x * x)))
                                  : 0.5 * x * (1 + erf(x / sqrt(2.0)));
            ref[n * F + f] = gl * up;
        }
    run_geglu(&s->e64, h64, a, kind, N, F);
    run_geglu(&s->e32, h32, a, kind, N, F);
    compare(s, kind == GT_GELU_TANH ? "geglu (tanh gelu)" : "geglu (erf gelu)", ref, h64, h32,
            (size_t)N * F, 1e-14);
    free(a), free(ref), free(h64), free(h32);
}

/* ---- cross-entropy: out = [lse (N), loss, dlogits (N V)] ---- */
static void run_ce(const env *e, double *out, const double *logits, const int32_t *target,
                   float dscale, int N, int V) {
    void *dl = put(e, logits, (size_t)N * V), *part = put(e, out, (size_t)N * 3);
    void *lse = put(e, out, (size_t)N), *loss = put(e, out + N, 1); /* out[N] = 0 initially */
    void *dd = put(e, out, (size_t)N * V);
    e->ops->ce_partial(e->be, part, dl, target, 0, V, N);
    e->ops->ce_finish(e->be, lse, loss, part, target, 1, N);
    e->ops->ce_backward(e->be, dd, dl, target, lse, dscale, 0, V, N);
    take(e, out, lse, (size_t)N);
    take(e, out + N, loss, 1);
    take(e, out + N + 1, dd, (size_t)N * V);
    e->ops->release(e->be, dl);
    e->ops->release(e->be, part);
}

static void test_cross_entropy(suite *s, rng *r) {
    enum { N = 6, V = 50 };
    static const int32_t target[N] = {0, 49, -100, 17, 17, 3};
    const float dscale = 0.125f;
    const size_t n = 1 + N + (size_t)N * V;
    double *l = rand_arr(r, (size_t)N * V, 8), *ref = zeros(n), *o64 = zeros(n), *o32 = zeros(n);
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) m = fmax(m, l[i * V + v]);
        for (int v = 0; v < V; v++) z += exp(l[i * V + v] - m);
        ref[i] = m + log(z);
        for (int v = 0; v < V && target[i] >= 0; v++) {
            const double logp = l[i * V + v] - m - log(z); /* log-softmax */
            if (v == target[i]) ref[N] -= logp;
            ref[N + 1 + i * V + v] = (exp(logp) - (v == target[i])) * dscale;
        }
    }
    run_ce(&s->e64, o64, l, target, dscale, N, V);
    run_ce(&s->e32, o32, l, target, dscale, N, V);
    compare(s, "cross-entropy lse", ref, o64, o32, N, 1e-14);
    compare(s, "cross-entropy loss sum (-100 skipped)", ref + N, o64 + N, o32 + N, 1, 1e-14);
    compare(s, "cross-entropy dlogits", ref + N + 1, o64 + N + 1, o32 + N + 1, (size_t)N * V,
            1e-13);
    free(l), free(ref), free(o64), free(o32);
}

/* ---- optimizer ---- */
static void run_sumsq(const env *e, double *out, const double *g, size_t n) {
    void *dg = put(e, g, n), *dout = put(e, out, 1);
    e->ops->grad_sumsq(e->be, dout, dg, n);
    take(e, out, dout, 1);
    e->ops->release(e->be, dg);
}

static void test_grad_sumsq(suite *s, rng *r) {
    const size_t n = 1001;
    double *g = rand_arr(r, n, 3), ref = 1.5, o64 = 1.5, o32 = 1.5; /* out accumulates (+=) */
    for (size_t i = 0; i < n; i++) ref += g[i] * g[i];
    run_sumsq(&s->e64, &o64, g, n);
    run_sumsq(&s->e32, &o32, g, n);
    compare(s, "grad_sumsq (+=)", &ref, &o64, &o32, 1, 1e-14);
    free(g);
}

/* p, m, v: [n] updated in place by two AdamW steps with gradients g1 then g2. */
static void run_adamw(const env *e, double *p, double *m, double *v, const double *g1,
                      const double *g2, size_t n, gt_adamw_args args) {
    void *dp = put(e, p, n), *dm = put(e, m, n), *dv = put(e, v, n);
    void *dg1 = put(e, g1, n), *dg2 = put(e, g2, n);
    args.step = 1;
    e->ops->adamw(e->be, dp, NULL, dm, dv, dg1, n, &args);
    args.step = 2;
    e->ops->adamw(e->be, dp, NULL, dm, dv, dg2, n, &args);
    take(e, p, dp, n), take(e, m, dm, n), take(e, v, dv, n);
    e->ops->release(e->be, dg1);
    e->ops->release(e->be, dg2);
}

/* The textbook AdamW step: p -= lr (mhat / (sqrt(vhat) + eps) + wd p). */
static void adamw_formula(double *p, double *m, double *v, double g, const gt_adamw_args *a) {
    g *= a->grad_scale;
    *m = a->beta1 * *m + (1 - a->beta1) * g;
    *v = a->beta2 * *v + (1 - a->beta2) * g * g;
    const double mhat = *m / (1 - pow(a->beta1, a->step)), vhat = *v / (1 - pow(a->beta2, a->step));
    *p -= a->lr * (mhat / (sqrt(vhat) + a->eps) + a->weight_decay * *p);
}

static void test_adamw(suite *s, rng *r) {
    enum { n = 40 };
    gt_adamw_args args = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0, GT_OPT_FP32, 0, 0};
    double *p0 = rand_arr(r, n, 1), *g1 = rand_arr(r, n, 1), *g2 = rand_arr(r, n, 1e-3);
    double ref[3 * n] = {0}, o64[3 * n] = {0}, o32[3 * n] = {0}; /* p, m, v */
    for (int i = 0; i < n; i++) {
        ref[i] = o64[i] = o32[i] = p0[i];
        args.step = 1;
        adamw_formula(&ref[i], &ref[n + i], &ref[2 * n + i], g1[i], &args);
        args.step = 2;
        adamw_formula(&ref[i], &ref[n + i], &ref[2 * n + i], g2[i], &args);
    }
    run_adamw(&s->e64, o64, o64 + n, o64 + 2 * n, g1, g2, n, args);
    run_adamw(&s->e32, o32, o32 + n, o32 + 2 * n, g1, g2, n, args);
    double d64[n], d32[n], dref[n]; /* the change of p, where the optimizer's arithmetic shows */
    for (int i = 0; i < n; i++)
        d64[i] = o64[i] - p0[i], d32[i] = o32[i] - p0[i], dref[i] = ref[i] - p0[i];
    compare(s, "adamw 2 steps: param", ref, o64, o32, n, 1e-14);
    compare(s, "adamw 2 steps: param change", dref, d64, d32, n, 1e-12);
    compare(s, "adamw 2 steps: m, v", ref + n, o64 + n, o32 + n, 2 * n, 1e-14);
    free(p0), free(g1), free(g2);
}

int main(void) {
    gt_check c = {0, 0};
    rng r = {777};
    gt_backend *be = gt_cpu_backend_create();
    suite s = {&c, {gt_cpu64_ops(), be}, {gt_cpu_ops(), be}};
    gt_check_true(&c, !strcmp(s.e32.ops->name, "cpu") && !strcmp(s.e64.ops->name, "cpu64"),
                  "backend names");
    for (int k = 0; k < 3; k++) {
        gt_check_true(&c, s.e32.ops->size[k] == sizeof(float), "cpu element size of kind %d", k);
        gt_check_true(&c, s.e64.ops->size[k] == sizeof(double), "cpu64 element size of kind %d", k);
    }
    test_memory(&s, &s.e32, &r);
    test_memory(&s, &s.e64, &r);
    test_embedding(&s, &r);
    test_rmsnorm(&s, &r);
    test_matmul(&s, &r);
    test_rope_formula(&s, &r, 4, 2, 8);
    test_rope_formula(&s, &r, 8, 1, 32);
    test_rope_float_angles(&s, &r);
    test_rope_relative(&s, &r);
    for (int seg = 0; seg <= 1; seg++) {
        test_attention(&s, &r, 2, 7, 3, 3, 6, seg);  /* MHA */
        test_attention(&s, &r, 2, 7, 4, 2, 8, seg);  /* GQA */
        test_attention(&s, &r, 2, 7, 4, 1, 10, seg); /* MQA */
    }
    test_attention(&s, &r, 1, 33, 2, 1, 16, 0);
    test_geglu(&s, &r, GT_GELU_TANH);
    test_geglu(&s, &r, GT_GELU_ERF);
    test_cross_entropy(&s, &r);
    test_grad_sumsq(&s, &r);
    test_adamw(&s, &r);
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "test_ops_forward");
}
