/* FP8 training emulated on the CPU: a tiny model with FP8 GEMMs (delayed scaling, history 16,
 * "max") trained 40 AdamW steps on random batches stays close to the same model without FP8 (first
 * loss within 2%, mean of the last 10 losses within 5%, both falling), the scales move off 1 and
 * stay finite, and calibration (BF16 forwards that only record amaxes) sets every scale from the
 * data before FP8 starts. The same with the lm_head in FP8 too (fp8.lm_head): 3 more tensors, named
 * lm_head.*, and the same closeness to BF16. The fused RMSNorm->FP8 and GeGLU->FP8 casts change
 * nothing: 5 steps with them (and the residual adds fused into the norms) and with the adds, norms,
 * GeGLU and the casts as separate ops give bitwise-equal losses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../model/fp8.h"
#include "../../model/fp8_state.h"
#include "../../train/optimizer.h"
#include "check.h"

enum { B = 2, T = 32, N = B * T, STEPS = 40 };

static void batch(int step, int vocab, int32_t *tok, int32_t *tgt, int32_t *pos) {
    unsigned s = 77u + 1000u * (unsigned)step;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        tok[i] = (i % T) % 4 ? (int32_t)((s >> 8) % (unsigned)vocab) : (int32_t)(i % 7);
        pos[i] = i % T;
    }
    for (int i = 0; i < N; i++) tgt[i] = (i % T) + 1 < T ? tok[i + 1] : -1;
}

/* The gqa fixture's weights in a one-process model on op table o. */
static void open_fixture(gt_model *m, const gt_config *cfg, const gt_ops *o, gt_backend *be) {
    gt_err e;
    GT_ASSERT(!gt_model_init(m, cfg, o, be, 0, 1, &e) && !gt_model_load_hf(m, "tests/fixtures/gqa", &e), "%s", e.msg);
}

static void run(gt_model *m, double *loss) {
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer opt;
    gt_optimizer_init(&opt, m, &ac);
    int32_t tok[N], tgt[N], pos[N];
    gt_model_alloc_batch(m, B, T);
    for (int s = 0; s < STEPS; s++) {
        batch(s, m->cfg.vocab_size, tok, tgt, pos);
        gt_model_set_batch(m, tok, tgt, pos, NULL);
        gt_model_zero_grads(m);
        loss[s] = gt_model_forward(m, 1, 1.0f / (B * (T - 1)), NULL) / (B * (T - 1));
        gt_model_backward(m);
        gt_optimizer_step(&opt, 2e-3f, gt_optimizer_grad_sumsq(&opt));
    }
    gt_optimizer_free(&opt);
}

/* Calibrates and trains an FP8 copy of the fixture (lm_head in FP8 or not) and compares it with the
 * BF16 losses lr. */
static void check_fp8(gt_check *c, const gt_config *cfg, gt_backend *be, int head, const double *lr) {
    gt_model m;
    open_fixture(&m, cfg, gt_cpu_ops(), be);
    gt_fp8_recipe r = {16, GT_AMAX_MAX, 0.0f, head};
    gt_model_enable_fp8(&m, &r, NULL);
    m.ce_chunk_cap = head ? 16 : 0; /* the lm_head in chunks of 16 of the 64 tokens */
    const gt_fp8 *f = m.fp8;
    char name[GT_FP8_NAME_LEN], what[160];
    gt_fp8_tensor_name(f->count, f->count - 1, name, sizeof name);
    gt_check_true(c, f->count == 12 * cfg->num_hidden_layers + 3 * head, "lm_head=%d: %d FP8 tensors", head, f->count);
    char want[GT_FP8_NAME_LEN];
    snprintf(want, sizeof want, "layers.%d.fc2.grad_output", cfg->num_hidden_layers - 1);
    gt_check_true(c, !strcmp(name, head ? "lm_head.grad_output" : want), "lm_head=%d: last tensor named %s", head, name);

    /* calibration: two BF16 forwards that record amaxes, then the scales reflect the data */
    int32_t tok[N], tgt[N], pos[N];
    gt_model_alloc_batch(&m, B, T);
    gt_model_fp8_calibrate(&m, 1);
    for (int s = 0; s < 2; s++) {
        batch(100 + s, cfg->vocab_size, tok, tgt, pos);
        gt_model_set_batch(&m, tok, tgt, pos, NULL);
        gt_model_zero_grads(&m);
        gt_model_forward(&m, 1, 1.0f, NULL);
        gt_model_backward(&m);
    }
    gt_check_true(c, m.acts[0].ln1 && m.acts[0].ln2 && m.acts[0].h, "calibration's BF16 GEMMs without their inputs");
    gt_model_fp8_calibrate(&m, 0);
    gt_model_zero_grads(&m);
    int moved = 0, finite = 1;
    for (int t = 0; t < f->count; t++) moved += f->scale[t] != 1.0f, finite &= isfinite(f->scale[t]) && f->scale[t] > 0;
    gt_check_true(c, moved == f->count && finite, "lm_head=%d: calibration set %d of %d scales (finite %d)", head,
                  moved, f->count, finite);
    /* the input scale of layer 0's QKV GEMM: 448 / max|ln1| over both batches */
    gt_check_true(c, f->scale[0] > 1.0f && f->scale[0] < 448.0f, "qkv input scale %g", f->scale[0]);

    double lf[STEPS];
    run(&m, lf);
    /* the FP8 GEMMs read the fused casts' copies: the BF16 ln1, ln2 and h are never allocated */
    int stored = 0;
    for (int l = 0; l < cfg->num_hidden_layers; l++) stored += !!m.acts[l].ln1 + !!m.acts[l].ln2 + !!m.acts[l].h;
    gt_check_true(c, stored == 0, "lm_head=%d: %d BF16 GEMM inputs allocated in FP8 training", head, stored);
    /* Single steps differ by the FP8 noise the trajectory picks up; the loss level must not. */
    double worst = 0, mf = 0, mr = 0;
    for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(lf[s] - lr[s]) / lr[s]);
    for (int s = STEPS - 10; s < STEPS; s++) mf += lf[s] / 10, mr += lr[s] / 10;
    for (int s = 0; s < STEPS; s += 8) printf("lm_head=%d step %2d: bf16 %.4f fp8 %.4f\n", head, s, lr[s], lf[s]);
    snprintf(what, sizeof what, "lm_head=%d: FP8 vs BF16 first loss (%.4f vs %.4f)", head, lf[0], lr[0]);
    gt_check_rel(c, fabs(lf[0] - lr[0]) / lr[0], 2e-2, what);
    snprintf(what, sizeof what, "lm_head=%d: FP8 vs BF16 mean of the last 10 of %d steps (%.3f vs %.3f)", head, STEPS,
             mf, mr);
    gt_check_rel(c, fabs(mf - mr) / mr, 5e-2, what);
    gt_check_true(c, mf < 0.85 * lf[0], "FP8 loss did not fall: %.3f -> %.3f", lf[0], mf);
    gt_check_true(c, worst > 0, "FP8 run identical to BF16: FP8 GEMMs not used");
    if (head) /* the lm_head's tensors were used: amaxes recorded, scales moved */
        for (int t = 0; t < 3; t++) {
            int k = t < 2 ? 2 * (f->slots - 1) + t : f->count - 1;
            gt_check_true(c, f->scale[k] != 1.0f && f->history[k + (size_t)(f->len - 1) * f->count] > 0,
                          "lm_head tensor %d: scale %g", k, f->scale[k]);
        }
    finite = 1;
    for (int t = 0; t < f->count; t++) finite &= isfinite(f->scale[t]) && f->scale[t] > 0;
    gt_check_true(c, finite, "a scale became non-finite");
    gt_model_free(&m);
}

/* 5 FP8 steps of the fixture on op table o; losses into loss. */
static void short_run(const gt_config *cfg, const gt_ops *o, gt_backend *be, double *loss) {
    gt_model m;
    open_fixture(&m, cfg, o, be);
    gt_fp8_recipe r = {16, GT_AMAX_MAX, 0.0f, 0};
    gt_model_enable_fp8(&m, &r, NULL);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer opt;
    gt_optimizer_init(&opt, &m, &ac);
    int32_t tok[N], tgt[N], pos[N];
    gt_model_alloc_batch(&m, B, T);
    for (int s = 0; s < 5; s++) {
        batch(s, cfg->vocab_size, tok, tgt, pos);
        gt_model_set_batch(&m, tok, tgt, pos, NULL);
        gt_model_zero_grads(&m);
        loss[s] = gt_model_forward(&m, 1, 1.0f / (B * (T - 1)), NULL);
        gt_model_backward(&m);
        gt_optimizer_step(&opt, 2e-3f, gt_optimizer_grad_sumsq(&opt));
    }
    gt_optimizer_free(&opt);
    gt_model_free(&m);
}

static long rms_fp8_calls, add_rms_fp8_calls;
static void counted_rmsnorm_fwd_fp8(gt_backend *be, void *y, void *y8, void *y8t, void *rstd, const void *x,
                                    const void *w, float eps, int N_, int C, gt_dtype fmt, const float *scale,
                                    float *amax) {
    rms_fp8_calls++;
    gt_cpu_ops()->rmsnorm_fwd_fp8(be, y, y8, y8t, rstd, x, w, eps, N_, C, fmt, scale, amax);
}

static void counted_add_rmsnorm_fwd_fp8(gt_backend *be, void *res, void *y, void *y8, void *y8t, void *rstd,
                                        const void *a, const void *b, const void *w, float eps, int N_, int C,
                                        gt_dtype fmt, const float *scale, float *amax) {
    add_rms_fp8_calls++;
    gt_cpu_ops()->add_rmsnorm_fwd_fp8(be, res, y, y8, y8t, rstd, a, b, w, eps, N_, C, fmt, scale, amax);
}

static void check_fused(gt_check *c, const gt_config *cfg, gt_backend *be) {
    const gt_ops *o = gt_cpu_ops();
    GT_ASSERT(o->geglu_fwd_fp8 && o->geglu_bwd_fp8 && o->rmsnorm_fwd_fp8 && o->add_rmsnorm_fwd_fp8,
              "cpu backend: no fused FP8 casts");
    gt_ops fused_ops = *o, split = *o;
    fused_ops.rmsnorm_fwd_fp8 = counted_rmsnorm_fwd_fp8;
    fused_ops.add_rmsnorm_fwd_fp8 = counted_add_rmsnorm_fwd_fp8;
    split.geglu_fwd_fp8 = NULL;
    split.geglu_bwd_fp8 = NULL;
    split.rmsnorm_fwd_fp8 = NULL;
    split.add_rmsnorm_fwd_fp8 = NULL;
    split.add_rmsnorm_fwd = NULL;
    double fused[5], unfused[5];
    short_run(cfg, &fused_ops, be, fused);
    short_run(cfg, &split, be, unfused);
    gt_check_true(c, !memcmp(fused, unfused, sizeof fused),
                  "fused RMSNorm/GeGLU->FP8 casts: losses %.9g .. %.9g vs separate ops %.9g .. %.9g", fused[0],
                  fused[4], unfused[0], unfused[4]);
    /* the fused norms ran: ln1 and ln2 of every layer in each of the 5 training forwards, all but
     * layer 0's ln1 (after the embedding: nothing to add) with the residual add fused in */
    long L = cfg->num_hidden_layers;
    gt_check_true(c, rms_fp8_calls == 5 && add_rms_fp8_calls == (2 * L - 1) * 5,
                  "rmsnorm_fwd_fp8 called %ld times (want 5), add_rmsnorm_fwd_fp8 %ld (want %ld)", rms_fp8_calls,
                  add_rms_fp8_calls, (2 * L - 1) * 5);
}

int main(void) {
    gt_check c = {0};
    gt_err e;
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, "tests/fixtures/gqa", &e), "%s", e.msg);
    gt_backend *be = gt_cpu_backend_create();
    gt_model ref;
    open_fixture(&ref, &cfg, gt_cpu_ops(), be);
    double lr[STEPS];
    run(&ref, lr);
    gt_model_free(&ref);
    for (int head = 0; head <= 1; head++) check_fp8(&c, &cfg, be, head, lr);
    check_fused(&c, &cfg, be);
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "fp8_model");
}
