/* Writing and reading an FP8-calibrated model directory (train/ckpt/calibrated.h). */
#include "calibrated.h"

#include <stdio.h>
#include <sys/stat.h>

#include "../../model/fp8.h"
#include "ckpt_internal.h"
#include "export_hf.h"

int gt_calibrated_save(gt_model *m, gt_grid *g, const char *dir, long long steps, gt_err *err) {
    GT_ASSERT(m->fp8, "gt_calibrated_save: the model has no FP8 state");
    gt_dtype dt = m->cfg.dtype == GT_BF16 || m->cfg.dtype == GT_F16 ? m->cfg.dtype : GT_F32;
    if (gt_export_hf(m, g, dir, dt, err)) return -1;
    int armed = gt_watchdog_arm(g->wd, 0); /* rank 0 writes while the others wait */
    int rc = g->world_rank == 0 ? ck_fp8_save_file(m, dir, steps, err) : 0;
    rc = ck_agree(g, rc, err);
    gt_watchdog_arm(g->wd, armed);
    return rc;
}

/* 1: dir has the file, 0: not, -1: the path does not fit. */
static int has_state(const char *dir, gt_err *err) {
    char path[GT_CKPT_PATH];
    struct stat sb;
    if (gt_path_join(path, sizeof path, dir, CK_FP8_FILE, err)) return -1;
    return stat(path, &sb) == 0;
}

int gt_fp8_state_recipe(const char *dir, gt_fp8_recipe *r, gt_err *err) {
    int has = has_state(dir, err);
    if (has <= 0) return has;
    gt_ckpt_fp8 info;
    long long calibrated;
    if (ck_fp8_describe(dir, &info, &calibrated, err)) return -1;
    if (info.count % 12 != 0 && info.count % 12 != 3)
        return gt_fail(err, "%s/%s: %d FP8 tensors, neither 12 per layer nor 12 per layer + 3 (the lm_head)", dir,
                       CK_FP8_FILE, info.count);
    *r = (gt_fp8_recipe){info.history_len, info.algo, (float)info.margin, info.count % 12 == 3};
    return 1;
}

int gt_fp8_state_load(gt_model *m, const char *dir, gt_fp8_file *out, gt_err *err) {
    const gt_fp8 *f = m->fp8;
    GT_ASSERT(f, "gt_fp8_state_load: the model's FP8 is off");
    int has = has_state(dir, err);
    if (has <= 0) return has;
    gt_fp8_file in;
    if (ck_fp8_describe(dir, &in.fp8, &in.calibrated, err)) return -1;
    if (in.fp8.history_len != f->len)
        return gt_fail(err, "fp8.history_len: %d, but %s/%s holds amax histories of length %d (use "
                            "--set fp8.history_len=%d, or calibrate again with --set fp8.history_len=%d)",
                       f->len, dir, CK_FP8_FILE, in.fp8.history_len, in.fp8.history_len, f->len);
    if (in.fp8.count == f->count + 3 || in.fp8.count + 3 == f->count) /* 3 tensors: the lm_head's */
        return gt_fail(err, "fp8.lm_head: %s, but %s/%s holds FP8 state %s the lm_head (use --set fp8.lm_head=%s)",
                       f->recipe.lm_head ? "true" : "false", dir, CK_FP8_FILE,
                       f->recipe.lm_head ? "without" : "with", f->recipe.lm_head ? "false" : "true");
    if (ck_read_fp8(m, dir, &in.fp8, err)) return -1;
    if (out) *out = in;
    return 1;
}

int gt_fp8_state_enable(gt_model *m, const char *dir, gt_group *amax_group, gt_err *err) {
    gt_fp8_recipe r;
    int has = gt_fp8_state_recipe(dir, &r, err);
    if (has <= 0) return has;
    if (!m->ops->fp8_cast || !m->ops->matmul_fp8 || !m->ops->fp8_update)
        return gt_fail(err, "%s: the %s backend has no FP8 ops", dir, m->ops->name);
    gt_model_enable_fp8(m, &r, amax_group);
    return gt_fp8_state_load(m, dir, NULL, err);
}
