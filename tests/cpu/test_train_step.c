/* Training steps on the CPU reference against PyTorch: 4 AdamW steps (lr 1e-2, betas 0.9/0.95,
 * eps 1e-8, weight decay 0.1 on matrices only, gradient norm clipped to 1.0) on each fixture's
 * batch must give torch's loss sequence (fixture tensor train_loss) within 1e-4 relative. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/safetensors.h"
#include "../../train/optimizer.h"
#include "check.h"

static void read_batch(const gt_st *st, int *B, int *T, int32_t **tok, int32_t **tgt, int32_t **pos,
                       int *count) {
    gt_err err;
    const gt_st_tensor *ti = gt_st_find(st, "input_ids"), *tl = gt_st_find(st, "labels");
    GT_ASSERT(ti && tl, "fixture without input_ids/labels");
    *B = (int)ti->shape[0];
    *T = (int)ti->shape[1];
    int N = *B * *T;
    int64_t *ids = gt_malloc((size_t)N * 8), *lab = gt_malloc((size_t)N * 8);
    GT_ASSERT(!gt_st_read_raw(st, ti, ids, &err) && !gt_st_read_raw(st, tl, lab, &err), "%s", err.msg);
    *tok = gt_malloc((size_t)N * 4);
    *tgt = gt_malloc((size_t)N * 4);
    *pos = gt_malloc((size_t)N * 4);
    *count = 0;
    for (int i = 0; i < N; i++) {
        int t = i % *T;
        int64_t next = t + 1 < *T ? lab[i + 1] : -100;
        (*tok)[i] = (int32_t)ids[i];
        (*tgt)[i] = next < 0 ? -1 : (int32_t)next;
        (*pos)[i] = t;
        *count += next >= 0;
    }
    free(ids);
    free(lab);
}

static void run_fixture(gt_check *c, const char *name) {
    char dir[128], path[160], what[128];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    gt_err err;
    gt_config cfg;
    gt_model m;
    gt_st st;
    gt_backend *be = gt_cpu_backend_create();
    GT_ASSERT(!gt_config_load(&cfg, dir, &err) && !gt_model_init(&m, &cfg, gt_cpu_ops(), be, 0, 1, &err) &&
                  !gt_model_load_hf(&m, dir, &err) && !gt_st_open(&st, path, &err),
              "%s", err.msg);
    int B, T, count;
    int32_t *tok, *tgt, *pos;
    read_batch(&st, &B, &T, &tok, &tgt, &pos, &count);
    float ref[5];
    GT_ASSERT(!gt_st_read_f32(&st, gt_st_find(&st, "train_loss"), 0, 1, 0, 5, ref, &err), "%s", err.msg);

    gt_model_alloc_batch(&m, B, T);
    gt_model_set_batch(&m, tok, tgt, pos, NULL);
    gt_adamw_config ac = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, GT_OPT_FP32, 0};
    gt_optimizer opt;
    gt_optimizer_init(&opt, &m, &ac);
    double got[5], num = 0, den = 0;
    for (int s = 0; s < 5; s++) {
        gt_model_zero_grads(&m);
        got[s] = gt_model_forward(&m, s < 4, 1.0f / (float)count, NULL) / count;
        if (s == 4) break;
        gt_model_backward(&m);
        gt_optimizer_step(&opt, 1e-2f, gt_optimizer_grad_sumsq(&opt));
    }
    for (int s = 0; s < 5; s++) num += (got[s] - ref[s]) * (got[s] - ref[s]), den += (double)ref[s] * ref[s];
    snprintf(what, sizeof what, "%s AdamW losses %.5f→%.5f (torch %.5f→%.5f)", name, got[0], got[4], ref[0], ref[4]);
    gt_check_rel(c, sqrt(num / den), 1e-4, what);
    gt_check_true(c, got[4] < got[0] - 0.1, "%s: loss did not fall", name);
    gt_optimizer_free(&opt);
    gt_st_close(&st);
    gt_model_free(&m);
    gt_cpu_backend_destroy(be);
    free(tok);
    free(tgt);
    free(pos);
}

int main(void) {
    gt_check c = {0};
    const char *names[] = {"mha", "gqa", "mqa", "bf16"};
    for (int i = 0; i < 4; i++) run_fixture(&c, names[i]);
    return gt_check_done(&c, "train_step");
}
