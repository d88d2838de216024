/* metrics.h5 read back for the run summary (metrics_read.h). */
#include "metrics_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_h5.h"

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

/* The rows read are complete: every column is read to its shortest one's length (step is appended
 * last, metrics.h). */
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
    static const char *const train[] = {"step", "loss", "grad_norm", "tokens_per_s", "step_time_s"};
    static const char *const eval[] = {"step", "loss"};
    double *t = NULL, *e = NULL;
    uint64_t nt = 0, ne = 0;
    int rc = mh5_read_columns(m, "/train", train, 5, &t, &nt, err);
    if (rc == 0) rc = mh5_read_columns(m, "/eval", eval, 2, &e, &ne, err);
    if (rc == 0) {
        train_totals(tot, t, t + nt, t + 2 * nt, t + 3 * nt, t + 4 * nt, (long long)nt);
        eval_totals(tot, e, e + ne, (long long)ne);
        rc = read_grid(m, tot->grid, sizeof tot->grid, err);
    }
    free(t);
    free(e);
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
