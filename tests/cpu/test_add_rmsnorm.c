/* The residual add fused into RMSNorm (kernels/ops.h add_rmsnorm_fwd, and add_rmsnorm_fwd_fp8 in
 * front of the FP8 norm) against its contract: bit-identical to add followed by rmsnorm_fwd (by
 * rmsnorm_fwd_fp8).
 *   Op: for "cpu" (float) and "cpu64" (double), shapes from 1x1 to 37x75 and 16x2048 (odd ones
 *   included), res separate, aliasing a, and aliasing b; the bytes of res, out and rstd compared
 *   with the composition's; the FP8 variant for every set of requested outputs (y, y8, y8t, alone
 *   and together; fused_fp8_harness.h), with res separate and aliasing a or b, in both formats, also
 *   y8, y8t and the bits of amax. Outputs are poisoned first, so an element the fused op does not
 *   write fails.
 *   Model: 3 training steps of the gqa fixture with the fused op and with the op table's
 *   add_rmsnorm_fwd removed (the model then calls add and rmsnorm_fwd) give bitwise-equal losses and
 *   gradients, and the fused op ran for every norm but layer 0's ln1 (2L per forward). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../model/model.h"
#include "../../train/optimizer.h"
#include "check.h"
#include "fused_fp8_harness.h"

enum { B = 2, T = 16, N = B * T, STEPS = 3 };

/* res aliases nothing (0), a (1) or b (2). */
static void test_op(gt_check *c, env *e, int rows, int C, int alias) {
    const gt_ops *o = e->ops;
    size_t n = (size_t)rows * C, act = o->size[GT_ACT], st = o->size[GT_STAT];
    const float eps = 1e-6f;
    void *a = rand_act_spread(e, n, -2, 2, 6, 1), *b = rand_act_spread(e, n, -2, 2, 6, 1);
    void *w = rand_act_spread(e, (size_t)C, -1, 1.5f, 1, 1);
    /* the composition, on copies of a and b */
    void *ra = poisoned(e, n * act), *rb = poisoned(e, n * act);
    memcpy(ra, a, n * act), memcpy(rb, b, n * act);
    void *res = poisoned(e, n * act), *y = poisoned(e, n * act), *rstd = poisoned(e, (size_t)rows * st);
    o->add(e->be, res, ra, rb, n);
    o->rmsnorm_fwd(e->be, y, rstd, res, w, eps, rows, C);
    void *fres = alias == 1 ? a : alias == 2 ? b : poisoned(e, n * act);
    void *fy = poisoned(e, n * act), *frstd = poisoned(e, (size_t)rows * st);
    o->add_rmsnorm_fwd(e->be, fres, fy, frstd, a, b, w, eps, rows, C);
    static const char *const names[] = {"res separate", "res = a", "res = b"};
    gt_check_true(c, same(fres, res, n * act) && same(fy, y, n * act) && same(frstd, rstd, (size_t)rows * st),
                  "%s add_rmsnorm_fwd %dx%d %s: differs from add + rmsnorm_fwd", o->name, rows, C, names[alias]);
    if (!alias) o->release(e->be, fres);
    void *bufs[] = {a, b, w, ra, rb, res, y, rstd, fy, frstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->release(e->be, bufs[i]);
}

/* add_rmsnorm_fwd_fp8 against add + rmsnorm_fwd_fp8 (on copies of a and b), for one set of
 * requested outputs (VARIANTS: y, the FP8 copy, its transpose; rstd, res and amax always) and res
 * aliasing nothing (0), a (1) or b (2). */
static void test_op_fp8(gt_check *c, env *e, int rows, int C, gt_dtype fmt, const variant *k, int alias) {
    const gt_ops *o = e->ops;
    size_t n = (size_t)rows * C, act = o->size[GT_ACT], st = o->size[GT_STAT];
    const float eps = 1e-6f;
    float scale = fmt == GT_E4M3 ? 56.0f : 7168.0f;
    void *a = rand_act_spread(e, n, -2, 2, 6, 1), *b = rand_act_spread(e, n, -2, 2, 6, 1);
    void *w = rand_act_spread(e, (size_t)C, -1, 1.5f, 1, 1);
    void *ra = poisoned(e, n * act), *rb = poisoned(e, n * act);
    memcpy(ra, a, n * act), memcpy(rb, b, n * act);
    void *res = poisoned(e, n * act), *y = poisoned(e, n * act), *rstd = poisoned(e, (size_t)rows * st);
    uint8_t *q = poisoned(e, n), *qt = poisoned(e, n);
    float amax = 0.0f;
    o->add(e->be, res, ra, rb, n);
    o->rmsnorm_fwd_fp8(e->be, k->act ? y : NULL, k->q ? q : NULL, k->qt ? qt : NULL, rstd, res, w, eps, rows, C, fmt,
                       &scale, &amax);
    void *fres = alias == 1 ? a : alias == 2 ? b : poisoned(e, n * act);
    void *fy = poisoned(e, n * act), *frstd = poisoned(e, (size_t)rows * st);
    uint8_t *fq = poisoned(e, n), *fqt = poisoned(e, n);
    float famax = 0.0f;
    o->add_rmsnorm_fwd_fp8(e->be, fres, k->act ? fy : NULL, k->q ? fq : NULL, k->qt ? fqt : NULL, frstd, a, b, w, eps,
                           rows, C, fmt, &scale, &famax);
    int ok = same(fres, res, n * act) && same(frstd, rstd, (size_t)rows * st) && same(fq, q, n) &&
             same(fqt, qt, n) && bits(famax) == bits(amax) && same(fy, y, n * act);
    static const char *const names[] = {"res separate", "res = a", "res = b"};
    gt_check_true(c, ok, "%s add_rmsnorm_fwd_fp8 %dx%d %s, %s, %s: differs from add + rmsnorm_fwd_fp8", o->name, rows,
                  C, fmt == GT_E4M3 ? "E4M3" : "E5M2", k->name, names[alias]);
    if (!alias) o->release(e->be, fres);
    void *bufs[] = {a, b, w, ra, rb, res, y, rstd, q, qt, fy, frstd, fq, fqt};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->release(e->be, bufs[i]);
}

static long fused_calls;
static void counted_add_rmsnorm_fwd(gt_backend *be, void *res, void *out, void *rstd, const void *a, const void *b,
                                    const void *w, float eps, int rows, int C) {
    fused_calls++;
    gt_cpu_ops()->add_rmsnorm_fwd(be, res, out, rstd, a, b, w, eps, rows, C);
}

static void batch(int step, int vocab, int32_t *tok, int32_t *tgt, int32_t *pos) {
    unsigned s = 91u + 1000u * (unsigned)step;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        tok[i] = (int32_t)((s >> 8) % (unsigned)vocab);
        pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) tgt[i] = (i % T) + 1 < T ? tok[i + 1] : -1;
}

/* STEPS AdamW steps of the gqa fixture on op table o: losses into loss, the last step's gradients
 * (before its update) into grads (count floats, malloc'ed). */
static void short_run(const gt_config *cfg, const gt_ops *o, gt_backend *be, double *loss, float **grads,
                      size_t *count) {
    gt_model m;
    gt_err e;
    GT_ASSERT(!gt_model_init(&m, cfg, o, be, 0, 1, &e) && !gt_model_load_hf(&m, "tests/fixtures/gqa", &e), "%s",
              e.msg);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer opt;
    gt_optimizer_init(&opt, &m, &ac);
    int32_t tok[N], tgt[N], pos[N];
    gt_model_alloc_batch(&m, B, T);
    *count = m.lay.count;
    *grads = gt_malloc(*count * sizeof(float));
    for (int s = 0; s < STEPS; s++) {
        batch(s, cfg->vocab_size, tok, tgt, pos);
        gt_model_set_batch(&m, tok, tgt, pos, NULL);
        gt_model_zero_grads(&m);
        loss[s] = gt_model_forward(&m, 1, 1.0f / (B * (T - 1)), NULL);
        gt_model_backward(&m);
        if (s + 1 == STEPS) o->download(be, GT_GRAD, *grads, m.grads, *count);
        gt_optimizer_step(&opt, 2e-3f, gt_optimizer_grad_sumsq(&opt));
    }
    gt_optimizer_free(&opt);
    gt_model_free(&m);
}

static void test_model(gt_check *c, gt_backend *be) {
    gt_err e;
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, "tests/fixtures/gqa", &e), "%s", e.msg);
    gt_ops fused = *gt_cpu_ops(), split = *gt_cpu_ops();
    fused.add_rmsnorm_fwd = counted_add_rmsnorm_fwd;
    split.add_rmsnorm_fwd = NULL;
    double lf[STEPS], ls[STEPS];
    float *gf, *gs;
    size_t nf, ns;
    short_run(&cfg, &fused, be, lf, &gf, &nf);
    short_run(&cfg, &split, be, ls, &gs, &ns);
    gt_check_true(c, !memcmp(lf, ls, sizeof lf), "fused residual add + norm: losses %.9g .. %.9g vs separate ops %.9g .. %.9g",
                  lf[0], lf[STEPS - 1], ls[0], ls[STEPS - 1]);
    gt_check_true(c, nf == ns && !memcmp(gf, gs, nf * sizeof(float)),
                  "fused residual add + norm: gradients differ from the separate ops'");
    gt_check_true(c, fused_calls == 2L * cfg.num_hidden_layers * STEPS, "add_rmsnorm_fwd called %ld times, want %d",
                  fused_calls, 2 * cfg.num_hidden_layers * STEPS);
    free(gf);
    free(gs);
}

int main(void) {
    gt_check c = {0};
    gt_backend *be = gt_cpu_backend_create();
    const gt_ops *backends[2] = {gt_cpu_ops(), gt_cpu64_ops()};
    const int shapes[][2] = {{1, 1}, {3, 5}, {37, 75}, {16, 16}, {4, 7}, {16, 2048}};
    for (int k = 0; k < 2; k++) {
        env e = {backends[k], be, 5151u + (uint64_t)k};
        GT_ASSERT(e.ops->add_rmsnorm_fwd, "backend %s has no fused residual add + RMSNorm", e.ops->name);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int alias = 0; alias < 3; alias++) test_op(&c, &e, shapes[s][0], shapes[s][1], alias);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++)
                for (int alias = 0; alias < 3; alias++)
                    test_op_fp8(&c, &e, shapes[s][0], shapes[s][1], (s + v + alias) % 2 ? GT_E5M2 : GT_E4M3,
                                &VARIANTS[v], alias);
    }
    test_model(&c, be);
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "add_rmsnorm");
}
