/* FP8 training emulated on the CPU: a tiny model with FP8 GEMMs (delayed scaling, history 16,
 * "max") trained 40 AdamW steps on random batches stays close to the same model without FP8 (first
 * loss within 2%, mean of the last 10 losses within 5%, both falling), the scales move off 1 and
 * stay finite, and calibration (BF16 forwards that only record amaxes) sets every scale from the
 * data before FP8 starts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/fp8.h"
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

static void run(gt_model *m, double *loss, int fp8) {
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
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
    (void)fp8;
    gt_optimizer_free(&opt);
}

int main(void) {
    gt_check c = {0};
    gt_err e;
    gt_config cfg;
    GT_ASSERT(!gt_config_load(&cfg, "tests/fixtures/gqa", &e), "%s", e.msg);
    gt_backend *be = gt_cpu_backend_create();
    gt_model ref, m;
    GT_ASSERT(!gt_model_init(&ref, &cfg, gt_cpu_ops(), be, 0, 1, &e) && !gt_model_load_hf(&ref, "tests/fixtures/gqa", &e) &&
                  !gt_model_init(&m, &cfg, gt_cpu_ops(), be, 0, 1, &e) && !gt_model_load_hf(&m, "tests/fixtures/gqa", &e),
              "%s", e.msg);
    gt_fp8_recipe r = {16, GT_AMAX_MAX, 0.0f};
    gt_model_enable_fp8(&m, &r, NULL);

    /* calibration: two BF16 forwards that record amaxes, then the scales reflect the data */
    int32_t tok[N], tgt[N], pos[N];
    gt_model_alloc_batch(&m, B, T);
    gt_model_fp8_calibrate(&m, 1);
    for (int s = 0; s < 2; s++) {
        batch(100 + s, cfg.vocab_size, tok, tgt, pos);
        gt_model_set_batch(&m, tok, tgt, pos, NULL);
        gt_model_zero_grads(&m);
        gt_model_forward(&m, 1, 1.0f, NULL);
        gt_model_backward(&m);
    }
    gt_model_fp8_calibrate(&m, 0);
    gt_model_zero_grads(&m);
    const gt_fp8 *f = m.fp8;
    int moved = 0, finite = 1;
    for (int t = 0; t < f->count; t++) moved += f->scale[t] != 1.0f, finite &= isfinite(f->scale[t]) && f->scale[t] > 0;
    gt_check_true(&c, moved == f->count && finite, "calibration set %d of %d scales (finite %d)", moved, f->count, finite);
    /* the input scale of layer 0's QKV GEMM: 448 / max|ln1| over both batches */
    gt_check_true(&c, f->scale[0] > 1.0f && f->scale[0] < 448.0f, "qkv input scale %g", f->scale[0]);

    double lr[STEPS], lf[STEPS];
    run(&ref, lr, 0);
    run(&m, lf, 1);
    /* Single steps differ by the FP8 noise the trajectory picks up; the loss level must not. */
    double worst = 0, mf = 0, mr = 0;
    for (int s = 0; s < STEPS; s++) worst = fmax(worst, fabs(lf[s] - lr[s]) / lr[s]);
    for (int s = STEPS - 10; s < STEPS; s++) mf += lf[s] / 10, mr += lr[s] / 10;
    for (int s = 0; s < STEPS; s += 8) printf("step %2d: bf16 %.4f fp8 %.4f\n", s, lr[s], lf[s]);
    char what[160];
    snprintf(what, sizeof what, "FP8 vs BF16 first loss (%.4f vs %.4f)", lf[0], lr[0]);
    gt_check_rel(&c, fabs(lf[0] - lr[0]) / lr[0], 2e-2, what);
    snprintf(what, sizeof what, "FP8 vs BF16 mean of the last 10 of %d steps (%.3f vs %.3f)", STEPS, mf, mr);
    gt_check_rel(&c, fabs(mf - mr) / mr, 5e-2, what);
    gt_check_true(&c, mf < 0.85 * lf[0], "FP8 loss did not fall: %.3f -> %.3f", lf[0], mf);
    gt_check_true(&c, worst > 0, "FP8 run identical to BF16: FP8 GEMMs not used");
    finite = 1;
    for (int t = 0; t < f->count; t++) finite &= isfinite(f->scale[t]) && f->scale[t] > 0;
    gt_check_true(&c, finite, "a scale became non-finite");
    gt_model_free(&ref);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
    return gt_check_done(&c, "fp8_model");
}
