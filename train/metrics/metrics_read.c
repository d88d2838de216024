/* metrics.h5 read back for the run summary (metrics_read.h). */
#include "metrics_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_h5.h"

/* Rows of the 1-D dataset group/name read as doubles into *out (malloc'ed, n rows; the caller frees). */
static int read_column(gt_metrics *m, const char *group, const char *name, double **out, long long *n, gt_err *err) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", group, name);
    int64_t ds = 0, space = 0;
    int rc = -1;
    *out = NULL;
    H5_SET(ds, H5Dopen2(m->file, path, H5P_DEFAULT));
    H5_GO(H5Drefresh(ds));
    H5_SET(space, H5Dget_space(ds));
    hsize_t dims[1] = {0};
    if (H5Sget_simple_extent_ndims(space) != 1) {
        rc = gt_fail(err, "%s: %s is not a column", m->path, path);
        goto out;
    }
    H5_GO(H5Sget_simple_extent_dims(space, dims, NULL));
    *n = (long long)dims[0];
    *out = gt_malloc(((size_t)dims[0] + 1) * sizeof **out);
    if (dims[0]) H5_GO(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out));
    rc = 0;
out:
    mh5_close(&space);
    mh5_close(&ds);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int read_grid(gt_metrics *m, char *grid, size_t len, gt_err *err) {
    int64_t attr = 0, type = 0;
    int rc = -1;
    char *value = NULL;
    grid[0] = 0;
    if (H5Aexists(m->file, "grid") <= 0) return 0;
    H5_SET(attr, H5Aopen(m->file, "grid", H5P_DEFAULT));
    H5_SET(type, H5Tcopy(H5T_C_S1));
    H5_GO(H5Tset_size(type, H5T_VARIABLE));
    H5_GO(H5Tset_cset(type, H5T_CSET_UTF8));
    H5_GO(H5Aread(attr, type, &value));
    snprintf(grid, len, "%s", value ? value : "");
    H5free_memory(value);
    rc = 0;
out:
    mh5_close(&type);
    mh5_close(&attr);
    return rc;
}

/* The rows below len(step) are complete: step is appended last (metrics.h), so every other column
 * is read to at least that many rows. */
static void train_totals(gt_metrics_totals *t, const double *step, const double *loss, const double *gn,
                         const double *tps, const double *sec, long long n) {
    t->rows = n;
    for (long long i = 0; i < n; i++) {
        t->seconds += sec[i];
        t->tokens += floor(tps[i] * sec[i] + 0.5);
        t->skipped += !isfinite(gn[i]);
    }
    if (n) {
        t->first_step = (long long)step[0], t->first_loss = loss[0];
        t->last_step = (long long)step[n - 1], t->last_loss = loss[n - 1];
    }
}

static void eval_totals(gt_metrics_totals *t, const double *step, const double *loss, long long n) {
    t->evals = n;
    for (long long i = 0; i < n; i++) {
        if (isfinite(loss[i]) && (t->best_eval_step == 0 || loss[i] < t->best_eval_loss))
            t->best_eval_loss = loss[i], t->best_eval_step = (long long)step[i];
    }
    if (n) t->last_eval_step = (long long)step[n - 1], t->last_eval_loss = loss[n - 1];
}

static int read_totals(gt_metrics *m, gt_metrics_totals *tot, gt_err *err) {
    enum { STEP, LOSS, GN, TPS, SEC, ESTEP, ELOSS, NCOL };
    static const char *const group[NCOL] = {"/train", "/train", "/train", "/train", "/train", "/eval", "/eval"};
    static const char *const name[NCOL] = {"step", "loss", "grad_norm", "tokens_per_s", "step_time_s", "step", "loss"};
    double *col[NCOL] = {0};
    long long len[NCOL] = {0};
    int rc = 0;
    /* step first: the other columns of the rows it counts are already written */
    for (int i = 0; i < NCOL && rc == 0; i++) rc = read_column(m, group[i], name[i], &col[i], &len[i], err);
    if (rc == 0) {
        long long n = len[STEP];
        for (int i = LOSS; i <= SEC; i++) n = len[i] < n ? len[i] : n;
        train_totals(tot, col[STEP], col[LOSS], col[GN], col[TPS], col[SEC], n);
        eval_totals(tot, col[ESTEP], col[ELOSS], len[ESTEP] < len[ELOSS] ? len[ESTEP] : len[ELOSS]);
        rc = read_grid(m, tot->grid, sizeof tot->grid, err);
    }
    for (int i = 0; i < NCOL; i++) free(col[i]);
    return rc;
}

int gt_metrics_read_totals(const char *path, gt_metrics_totals *tot, gt_err *err) {
    gt_metrics file, *m = &file;
    memset(m, 0, sizeof *m);
    memset(tot, 0, sizeof *tot);
    snprintf(m->path, sizeof m->path, "%s", path);
    int64_t fapl = 0;
    int rc = -1;
    H5E_auto2_t func;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5_SET(fapl, H5Pcreate(H5P_FILE_ACCESS));
    H5_GO(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST));
    H5_SET(m->file, H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl));
    rc = read_totals(m, tot, err);
out:
    mh5_close(&m->file);
    mh5_close(&fapl);
    H5Eset_auto2(H5E_DEFAULT, func, data);
    return rc;
}
