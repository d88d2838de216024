/* FP8 in the trainer (train/trainer_fp8.h). */
#include "trainer_fp8.h"

#include <stdio.h>
#include <stdlib.h>

#include "../model/fp8_state.h"
#include "ckpt/calibrated.h"

int gt_trainer_fp8_enable(gt_trainer *t, gt_err *err) {
    const gt_run_config *rc = t->rc;
    gt_model *m = &t->session.model;
    if (!m->ops->fp8_cast || !m->ops->matmul_fp8 || !m->ops->fp8_update)
        return gt_fail(err, "fp8.enabled: the %s backend has no FP8 ops", m->ops->name);
    gt_fp8_recipe r = {(int)rc->fp8_history_len, strcmp(rc->fp8_algo, "max") ? GT_AMAX_MOST_RECENT : GT_AMAX_MAX,
                       (float)rc->fp8_margin, rc->fp8_lm_head};
    /* The wrong group here made a Megatron run diverge: every rank that casts a piece of a tensor
     * (tp) or sees other data (dp) must agree on its scale. */
    gt_model_enable_fp8(m, &r, t->grid->world_size > 1 ? &t->grid->world : NULL);
    t->fp8_fresh = 1;
    return 0;
}

int gt_trainer_fp8_from_model(gt_trainer *t, gt_err *err) {
    gt_model *m = &t->session.model;
    if (!m->fp8 || !t->rc->model_path) return 0;
    gt_fp8_file in;
    int loaded = gt_fp8_state_load(m, t->rc->model_path, &in, err);
    if (ck_agree(t->grid, loaded < 0, err)) return -1;
    if (!loaded) return 0;
    t->fp8_fresh = 0;
    if (t->grid->world_rank != 0 || t->rc->quiet) return 0;
    char how[64] = "";
    if (in.calibrated >= 0) snprintf(how, sizeof how, ", calibrated on %lld step(s) of batches", in.calibrated);
    printf("fp8: state loaded from %s/%s (%d tensors, amax history %d%s): no calibration steps\n",
           t->rc->model_path, CK_FP8_FILE, in.fp8.count, in.fp8.history_len, how);
    const gt_fp8 *f = m->fp8;
    if (in.fp8.algo != f->recipe.algo || (float)in.fp8.margin != f->recipe.margin)
        printf("note: the FP8 recipe differs from the saved state's (algo %s, margin %g); the run config's applies "
               "from the first step on\n", ck_fp8_algo_name(in.fp8.algo), in.fp8.margin);
    fflush(stdout);
    return 0;
}

const gt_metrics_fp8_info *gt_trainer_fp8_info(const gt_trainer *t, gt_metrics_fp8_info *info) {
    const gt_fp8 *f = t->session.model.fp8;
    if (!f) return NULL;
    size_t n = (size_t)f->count;
    /* One block: the pointers, then the names they point to. */
    char **names = gt_malloc(n * (sizeof(char *) + GT_FP8_NAME_LEN));
    char *text = (char *)(names + n);
    for (size_t i = 0; i < n; i++) {
        names[i] = text + i * GT_FP8_NAME_LEN;
        gt_fp8_tensor_name(f->count, (int)i, names[i], GT_FP8_NAME_LEN);
    }
    *info = (gt_metrics_fp8_info){f->count, (const char *const *)names, f->len, t->rc->fp8_algo, f->recipe.margin};
    return info;
}

void gt_trainer_fp8_info_free(gt_metrics_fp8_info *info) {
    free((void *)info->names);
    info->names = NULL;
}

int gt_trainer_fp8_record(gt_trainer *t, gt_metrics *metrics, gt_err *err) {
    const gt_fp8 *f = t->session.model.fp8;
    long long every = t->rc->fp8_log_every;
    if (!f || every == 0 || t->step % every) return 0;
    float *amax = gt_malloc(2 * (size_t)f->count * sizeof *amax), *scale = amax + f->count;
    gt_fp8_download_latest(&t->session.model, amax, scale);
    int rc = gt_metrics_append_fp8(metrics, t->step, amax, scale, err);
    free(amax);
    return rc;
}

void gt_trainer_fp8_print(const gt_trainer *t) {
    const gt_fp8 *f = t->session.model.fp8;
    if (!f) return;
    char start[96];
    if (t->fp8_fresh) snprintf(start, sizeof start, "fresh scales, %lld calibration step(s)", t->rc->fp8_calibration_steps);
    else snprintf(start, sizeof start, "saved state (checkpoint or model directory)");
    printf("fp8: QKV, o_proj, fc1, fc2%s GEMMs in FP8 (E4M3 forward, E5M2 gradients; %s BF16), "
           "delayed scaling of %d tensors: history %d, algo %s, margin %g; %s\n",
           f->recipe.lm_head ? ", lm_head" : "", f->recipe.lm_head ? "embedding lookup" : "lm_head and embedding",
           f->count, f->len, t->rc->fp8_algo, f->recipe.margin, start);
}
