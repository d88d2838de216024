/* fp8_state.safetensors: the FP8 delayed-scaling state of a checkpoint (DESIGN.md §4, §5).
 *
 *   amax_history              F32 [history_len, count]  slot 0 of every tensor first (model/fp8.h)
 *   scale, scale_inv          F32 [count]
 *   fp8_max                   F32 [count]  448 (E4M3: inputs, weights), 57344 (E5M2: gradients)
 *   recipe.amax_compute_algo  I32 [1]      0 max, 1 most_recent
 *   recipe.margin             F32 [1]
 *
 * Tensor t is named by model/fp8_state.h ("layers.0.qkv.input", ...). The state is replicated on
 * every rank after the MAX reduction of the amaxes and does not depend on tp, so rank 0 writes it
 * whole and every rank reads all of it, on any layout. trainer_state.json's "fp8" object repeats
 * the count, length and recipe, so that a resume decides what to do without opening the file; the
 * recipe tensors make the file readable on its own.
 *
 * A calibrated model directory (`gemmatron calibrate`, train/ckpt/calibrated.h) holds the same file
 * with one more tensor, written by ck_fp8_save_file:
 *   calibration.steps         I64 [1]      the steps of batches the amaxes were recorded on */
#include <stdio.h>
#include <stdlib.h>

#include "../../model/fp8_state.h"
#include "../../model/safetensors.h"
#include "ckpt_internal.h"

const char *ck_fp8_algo_name(gt_amax_algo a) { return a == GT_AMAX_MOST_RECENT ? "most_recent" : "max"; }

/* The file's tensors for state info, in CK_FP8_* order (no data). */
static void fp8_entries(const gt_ckpt_fp8 *info, gt_st_entry e[CK_FP8_TENSORS]) {
    int64_t n = info->count;
    e[CK_FP8_HISTORY] = (gt_st_entry){"amax_history", GT_F32, 2, {info->history_len, n}, NULL};
    e[CK_FP8_SCALE] = (gt_st_entry){"scale", GT_F32, 1, {n}, NULL};
    e[CK_FP8_SCALE_INV] = (gt_st_entry){"scale_inv", GT_F32, 1, {n}, NULL};
    e[CK_FP8_MAX] = (gt_st_entry){"fp8_max", GT_F32, 1, {n}, NULL};
    e[CK_FP8_ALGO] = (gt_st_entry){"recipe.amax_compute_algo", GT_I32, 1, {1}, NULL};
    e[CK_FP8_MARGIN] = (gt_st_entry){"recipe.margin", GT_F32, 1, {1}, NULL};
}

int ck_catalog_add_fp8(ck_catalog *c, const gt_fp8 *f, gt_err *err) {
    c->fp8 = (gt_ckpt_fp8){1, f->count, f->len, f->recipe.algo, f->recipe.margin};
    gt_st_entry e[CK_FP8_TENSORS];
    fp8_entries(&c->fp8, e);
    ck_file *grown = realloc(c->files, (size_t)(c->nfiles + 1) * sizeof *grown);
    GT_ASSERT(grown, "out of host memory");
    c->files = grown;
    ck_file *file = &c->files[c->nfiles];
    memset(file, 0, sizeof *file);
    snprintf(file->name, sizeof file->name, "%s", CK_FP8_FILE);
    if (gt_st_header(file->name, e, CK_FP8_TENSORS, &file->header, &file->hbytes, c->fp8_off, &file->size, err))
        return -1;
    c->fp8_file = c->nfiles++;
    return 0;
}

int ck_write_fp8(gt_model *m, const ck_catalog *c, const int *fds, const char *dir, gt_err *err) {
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, CK_FP8_FILE, err)) return -1;
    gt_fp8_host h;
    gt_fp8_download(m, &h);
    int32_t algo = (int32_t)h.recipe.algo;
    float margin = h.recipe.margin;
    size_t row = (size_t)h.count * sizeof(float);
    const void *data[CK_FP8_TENSORS] = {h.history, h.scale, h.scale_inv, h.fp8_max, &algo, &margin};
    const size_t bytes[CK_FP8_TENSORS] = {(size_t)h.len * row, row, row, row, sizeof algo, sizeof margin};
    int rc = 0;
    for (int i = 0; i < CK_FP8_TENSORS && rc == 0; i++)
        rc = gt_pwrite_all(fds[c->fp8_file], data[i], bytes[i], c->fp8_off[i], path, err);
    gt_fp8_host_free(&h);
    return rc;
}

/* Opens dir's file and checks every tensor's dtype and shape against info. */
static int open_checked(gt_st *st, const char *dir, const gt_ckpt_fp8 *info, gt_err *err) {
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, CK_FP8_FILE, err) || gt_st_open(st, path, err)) return -1;
    gt_st_entry e[CK_FP8_TENSORS];
    fp8_entries(info, e);
    for (int i = 0; i < CK_FP8_TENSORS; i++) {
        const gt_st_tensor *t;
        int bad = gt_st_expect(st, e[i].name, e[i].ndim, e[i].shape, &t, err);
        if (!bad && t->dtype != e[i].dtype)
            bad = gt_fail(err, "%s: tensor '%s' has dtype %s, expected %s", path, e[i].name, gt_dtype_name(t->dtype),
                          gt_dtype_name(e[i].dtype));
        if (bad) {
            gt_st_close(st);
            return -1;
        }
    }
    return 0;
}

int ck_check_fp8(const char *dir, const gt_ckpt_fp8 *info, gt_err *err) {
    gt_st st;
    if (open_checked(&st, dir, info, err)) return -1;
    gt_st_close(&st);
    return 0;
}

static int read_tensor(const gt_st *st, const char *name, void *dst, gt_err *err) {
    return gt_st_read_raw(st, gt_st_find(st, name), dst, err);
}

int ck_read_fp8(gt_model *m, const char *dir, const gt_ckpt_fp8 *info, gt_err *err) {
    const gt_fp8 *f = m->fp8;
    if (info->history_len != f->len)
        return gt_fail(err, "fp8.history_len: %d, but checkpoint %s holds FP8 amax histories of length %d (resume "
                            "with --set fp8.history_len=%d)", f->len, dir, info->history_len, info->history_len);
    if (info->count == f->count + 3 || info->count + 3 == f->count) /* 3 tensors: the lm_head's */
        return gt_fail(err, "fp8.lm_head: %s, but checkpoint %s holds FP8 state %s the lm_head (resume with "
                            "--set fp8.lm_head=%s)", f->recipe.lm_head ? "true" : "false", dir,
                       f->recipe.lm_head ? "without" : "with", f->recipe.lm_head ? "false" : "true");
    if (info->count != f->count)
        return gt_fail(err, "%s: FP8 state of %d tensors, this model has %d", dir, info->count, f->count);
    gt_st st;
    if (open_checked(&st, dir, info, err)) return -1;
    gt_fp8_host h, want;
    gt_fp8_host_alloc(m, &h);
    gt_fp8_download(m, &want);
    int rc = read_tensor(&st, "amax_history", h.history, err);
    if (rc == 0) rc = read_tensor(&st, "scale", h.scale, err);
    if (rc == 0) rc = read_tensor(&st, "scale_inv", h.scale_inv, err);
    if (rc == 0) rc = read_tensor(&st, "fp8_max", h.fp8_max, err);
    /* The formats say which tensor is which: another order would restore scales onto wrong GEMMs. */
    if (rc == 0 && memcmp(h.fp8_max, want.fp8_max, (size_t)h.count * sizeof(float)))
        rc = gt_fail(err, "%s/%s: fp8_max differs from this model's (E4M3/E5M2 tensors in another order)", dir,
                     CK_FP8_FILE);
    if (rc == 0) gt_fp8_upload(m, &h);
    gt_fp8_host_free(&want);
    gt_fp8_host_free(&h);
    gt_st_close(&st);
    return rc;
}

#define CK_FP8_CALIBRATION "calibration.steps"

int ck_fp8_save_file(gt_model *m, const char *dir, long long calibrated, gt_err *err) {
    char path[GT_CKPT_PATH];
    if (gt_path_join(path, sizeof path, dir, CK_FP8_FILE, err)) return -1;
    gt_fp8_host h;
    gt_fp8_download(m, &h);
    gt_ckpt_fp8 info = {1, h.count, h.len, h.recipe.algo, h.recipe.margin};
    gt_st_entry e[CK_FP8_TENSORS + 1];
    fp8_entries(&info, e);
    int32_t algo = (int32_t)h.recipe.algo;
    float margin = h.recipe.margin;
    int64_t steps = calibrated;
    const void *data[CK_FP8_TENSORS] = {h.history, h.scale, h.scale_inv, h.fp8_max, &algo, &margin};
    for (int i = 0; i < CK_FP8_TENSORS; i++) e[i].data = data[i];
    e[CK_FP8_TENSORS] = (gt_st_entry){CK_FP8_CALIBRATION, GT_I64, 1, {1}, &steps};
    int rc = gt_st_write(path, e, CK_FP8_TENSORS + 1, err);
    gt_fp8_host_free(&h);
    return rc;
}

int ck_fp8_describe(const char *dir, gt_ckpt_fp8 *info, long long *calibrated, gt_err *err) {
    char path[GT_CKPT_PATH];
    gt_st st;
    if (gt_path_join(path, sizeof path, dir, CK_FP8_FILE, err) || gt_st_open(&st, path, err)) return -1;
    const gt_st_tensor *h = gt_st_find(&st, "amax_history"), *al = gt_st_find(&st, "recipe.amax_compute_algo");
    const gt_st_tensor *mg = gt_st_find(&st, "recipe.margin"), *cs = gt_st_find(&st, CK_FP8_CALIBRATION);
    int32_t algo = 0;
    float margin = 0;
    int64_t steps = -1;
    int rc = 0;
    if (!h || h->ndim != 2 || h->dtype != GT_F32 || !al || al->dtype != GT_I32 || al->numel != 1 || !mg ||
        mg->dtype != GT_F32 || mg->numel != 1 || (cs && (cs->dtype != GT_I64 || cs->numel != 1)))
        rc = gt_fail(err, "%s: not an FP8 state file (needs amax_history F32 [len, count], recipe.amax_compute_algo "
                          "I32 [1], recipe.margin F32 [1]; " CK_FP8_CALIBRATION ", when present, I64 [1])", path);
    if (rc == 0) rc = gt_st_read_raw(&st, al, &algo, err);
    if (rc == 0) rc = gt_st_read_raw(&st, mg, &margin, err);
    if (rc == 0 && cs) rc = gt_st_read_raw(&st, cs, &steps, err);
    if (rc == 0 && (h->shape[0] < 1 || h->shape[1] < 1 || h->shape[0] > (1 << 30) || h->shape[1] > (1 << 30) ||
                    (algo != GT_AMAX_MAX && algo != GT_AMAX_MOST_RECENT)))
        rc = gt_fail(err, "%s: amax_history [%lld, %lld] or recipe.amax_compute_algo %d out of range", path,
                     (long long)h->shape[0], (long long)h->shape[1], (int)algo);
    if (rc == 0) {
        *info = (gt_ckpt_fp8){1, (int)h->shape[1], (int)h->shape[0], (gt_amax_algo)algo, margin};
        *calibrated = steps;
    }
    gt_st_close(&st);
    return rc;
}
