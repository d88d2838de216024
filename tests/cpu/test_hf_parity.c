/* HF parity: the CPU reference (float32) against transformers' GemmaForCausalLM (float32, eager
 * attention) on the fixtures of scripts/make_fixtures.py: logits and every parameter gradient
 * within 1e-4 relative norm error, loss within 1e-5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/model.h"
#include "../../model/safetensors.h"
#include "check.h"

static const char *const fixtures[] = {"mha", "mqa", "gqa", "bf16", "f16", "sharded", "conflict"};

/* Reads an I64 [B, T] tensor into int32. */
static int32_t *read_ids(const gt_st *st, const char *name, int *B, int *T) {
    const gt_st_tensor *t = gt_st_find(st, name);
    GT_ASSERT(t && t->dtype == GT_I64 && t->ndim == 2, "expected.safetensors: bad %s", name);
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    int64_t *raw = gt_malloc((size_t)t->numel * sizeof *raw);
    gt_err err;
    GT_ASSERT(gt_st_read_raw(st, t, raw, &err) == 0, "%s", err.msg);
    int32_t *out = gt_malloc((size_t)t->numel * sizeof *out);
    for (int64_t i = 0; i < t->numel; i++) out[i] = (int32_t)raw[i];
    free(raw);
    return out;
}

static float *read_f32(const gt_st *st, const char *name, int64_t *numel) {
    const gt_st_tensor *t = gt_st_find(st, name);
    GT_ASSERT(t != NULL, "expected.safetensors: no %s", name);
    float *out = gt_malloc((size_t)t->numel * sizeof *out);
    gt_err err;
    int64_t rows = t->ndim >= 2 ? t->shape[0] : 1;
    GT_ASSERT(gt_st_read_f32(st, t, 0, rows, 0, t->numel / rows, out, &err) == 0, "%s", err.msg);
    *numel = t->numel;
    return out;
}

static void check_fixture(gt_check *c, const char *name) {
    char dir[256], path[300], what[160];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    gt_err err;
    gt_config cfg;
    gt_model m;
    gt_st exp;
    gt_backend *be = gt_cpu_backend_create();
    GT_ASSERT(gt_config_load(&cfg, dir, &err) == 0, "%s", err.msg);
    GT_ASSERT(gt_model_init(&m, &cfg, gt_cpu_ops(), be, 0, 1, &err) == 0, "%s", err.msg);
    GT_ASSERT(gt_model_load_hf(&m, dir, &err) == 0, "%s", err.msg);
    GT_ASSERT(gt_st_open(&exp, path, &err) == 0, "%s", err.msg);

    int B, T;
    int32_t *ids = read_ids(&exp, "input_ids", &B, &T);
    int32_t *labels = read_ids(&exp, "labels", &B, &T);
    int N = B * T;
    int32_t *tgt = gt_malloc((size_t)N * sizeof *tgt), *pos = gt_malloc((size_t)N * sizeof *pos);
    int count = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t next = t + 1 < T ? labels[b * T + t + 1] : -100;
            tgt[b * T + t] = next < 0 ? -1 : next;
            count += next >= 0;
            pos[b * T + t] = t;
        }
    gt_model_alloc_batch(&m, B, T);
    gt_model_set_batch(&m, ids, tgt, pos, NULL);
    gt_model_zero_grads(&m);
    float *logits = gt_malloc((size_t)N * cfg.vocab_size * sizeof(float));
    double loss = gt_model_forward(&m, 1, 1.0f / (float)count, logits) / count;
    gt_model_backward(&m);

    int64_t n;
    float *ref_loss = read_f32(&exp, "loss", &n);
    snprintf(what, sizeof what, "%s loss (%.6f vs HF %.6f)", name, loss, ref_loss[0]);
    gt_check_rel(c, fabs(loss - ref_loss[0]) / fabs(ref_loss[0]), 1e-5, what);
    float *ref_logits = read_f32(&exp, "logits", &n);
    snprintf(what, sizeof what, "%s logits", name);
    gt_check_rel(c, gt_rel_err_f(logits, ref_logits, (size_t)n), 1e-4, what);

    int grads = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < exp.ntensors; i++) {
        const char *tn = exp.tensors[i].name;
        if (strncmp(tn, "grad.", 5)) continue;
        float *ref = read_f32(&exp, tn, &n);
        float *got = gt_calloc((size_t)n, sizeof(float));
        gt_model_export_tensor(&m, 1, tn + 5, got);
        double e = gt_rel_err_f(got, ref, (size_t)n);
        if (!(e <= worst)) worst = e, worst_name = tn + 5;
        grads++;
        free(ref);
        free(got);
    }
    snprintf(what, sizeof what, "%s %d gradients (worst %s)", name, grads, worst_name);
    gt_check_rel(c, worst, 1e-4, what);
    gt_check_true(c, grads == 2 + 9 * cfg.num_hidden_layers, "%s: %d gradients in fixture", name, grads);

    free(ref_loss);
    free(ref_logits);
    free(logits);
    free(ids);
    free(labels);
    free(tgt);
    free(pos);
    gt_st_close(&exp);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
}

int main(void) {
    gt_check c = {0};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) check_fixture(&c, fixtures[i]);
    return gt_check_done(&c, "hf_parity");
}
