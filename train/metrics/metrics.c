/* metrics.h5 over HDF5's C API: /train, /eval, the attributes, crash recovery (/fp8 is in
 * train/metrics/metrics_fp8.c). Every call goes through H5_SET or H5_GO (train/metrics/metrics_h5.h) with HDF5's
 * own stack printout silenced, and a failure becomes one line: file, call, source line, and the
 * innermost reason from HDF5's error stack. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics_h5.h"

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t is stored as int64_t");

#define CHUNK_ROWS 256

static const char *train_names[GT_METRICS_TRAIN_COLS] = {
    "step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "step_time_s", "gpu_mem_gib"};
static const char *eval_names[2] = {"step", "loss"};

static herr_t first_reason(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0) snprintf(data, 256, "%s", e->desc ? e->desc : "");
    return 0;
}

/* HDF5's innermost description of a failed write or read is a paragraph ("file write failed: time =
 * ..., filename = ..., errno = 28, error message = 'No space left on device', buf = ..."): kept as its
 * first clause and the system's message. */
static void short_reason(char *reason, size_t len) {
    const char *msg = strstr(reason, "error message = '");
    if (!msg) {
        reason[strcspn(reason, "\n")] = 0;
        return;
    }
    msg += strlen("error message = '");
    char sys[128];
    snprintf(sys, sizeof sys, "%.*s", (int)strcspn(msg, "'"), msg);
    size_t head = strcspn(reason, ":,");
    char out[256];
    snprintf(out, sizeof out, "%.*s: %s", (int)head, reason, sys);
    snprintf(reason, len, "%s", out);
}

int mh5_fail(const gt_metrics *m, gt_err *err, const char *call, const char *file, int line) {
    char reason[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_reason, reason);
    H5Eclear2(H5E_DEFAULT);
    short_reason(reason, sizeof reason);
    int name = (int)strcspn(call, "(");
    const char *base = strrchr(file, '/');
    return gt_fail(err, "%s: HDF5 %.*s failed (%s:%d)%s%s", m->path, name, call, base ? base + 1 : file, line,
                   reason[0] ? ": " : "", reason);
}

void mh5_close(int64_t *id) {
    if (*id <= 0) return;
    H5E_BEGIN_TRY {
        switch (H5Iget_type(*id)) {
        case H5I_FILE: H5Fclose(*id); break;
        case H5I_GROUP: H5Gclose(*id); break;
        case H5I_DATASET: H5Dclose(*id); break;
        case H5I_DATASPACE: H5Sclose(*id); break;
        case H5I_DATATYPE: H5Tclose(*id); break;
        case H5I_ATTR: H5Aclose(*id); break;
        case H5I_GENPROP_LST: H5Pclose(*id); break;
        default: break;
        }
    }
    H5E_END_TRY;
    *id = 0;
}

/* ---- creating ---- */

static int create_column(gt_metrics *m, int64_t group, const char *name, hid_t type, int64_t *ds,
                         gt_err *err) {
    hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = CHUNK_ROWS;
    int64_t space = 0, dcpl = 0;
    int rc = -1;
    H5_SET(space, H5Screate_simple(1, &zero, &unlimited));
    H5_SET(dcpl, H5Pcreate(H5P_DATASET_CREATE));
    H5_GO(H5Pset_chunk(dcpl, 1, &chunk));
    H5_SET(*ds, H5Dcreate2(group, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    rc = 0;
out:
    mh5_close(&space);
    mh5_close(&dcpl);
    return rc;
}

static int create_group(gt_metrics *m, const char *name, const char *const *cols, int ncols,
                        int64_t *ids, gt_err *err) {
    int64_t g = 0;
    int rc = -1;
    H5_SET(g, H5Gcreate2(m->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    rc = 0;
    for (int i = 0; i < ncols && rc == 0; i++) {
        rc = create_column(m, g, cols[i], i == 0 ? H5T_STD_I64LE : H5T_IEEE_F64LE, &ids[i], err);
    }
out:
    mh5_close(&g);
    return rc;
}

static int create_file(gt_metrics *m, int64_t fapl, gt_err *err) {
    int64_t fp8 = 0;
    int rc = -1;
    H5_SET(m->file, H5Fcreate(m->path, H5F_ACC_EXCL, H5P_DEFAULT, fapl));
    if (create_group(m, "/train", train_names, GT_METRICS_TRAIN_COLS, m->train, err)) goto out;
    if (create_group(m, "/eval", eval_names, 2, m->eval, err)) goto out;
    H5_SET(fp8, H5Gcreate2(m->file, "/fp8", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    rc = 0;
out:
    mh5_close(&fp8);
    return rc;
}

/* ---- reopening ---- */

static int column_rows(gt_metrics *m, int64_t ds, const char *name, uint64_t *rows, gt_err *err) {
    int64_t space = 0;
    hsize_t n = 0;
    int rc = -1;
    H5_SET(space, H5Dget_space(ds));
    if (H5Sget_simple_extent_ndims(space) != 1 || H5Sget_simple_extent_dims(space, &n, NULL) != 1) {
        rc = gt_fail(err, "%s: %s is not a 1-D dataset", m->path, name);
        goto out;
    }
    *rows = n;
    rc = 0;
out:
    mh5_close(&space);
    return rc;
}

static int open_columns(gt_metrics *m, const char *group, const char *const *cols, int ncols,
                        int64_t *ids, uint64_t *rows, gt_err *err) {
    char name[64];
    int rc = -1;
    *rows = UINT64_MAX;
    for (int i = 0; i < ncols; i++) {
        uint64_t n;
        snprintf(name, sizeof name, "%s/%s", group, cols[i]);
        H5_SET(ids[i], H5Dopen2(m->file, name, H5P_DEFAULT));
        if (column_rows(m, ids[i], name, &n, err)) goto out;
        if (n < *rows) *rows = n; /* a row half-written by a crash is dropped */
    }
    rc = 0;
out:
    return rc;
}

/* Rows to keep: those before the first step > resume_step (steps increase down the column). */
int mh5_rows_to_keep(gt_metrics *m, int64_t step_ds, uint64_t rows, long long resume_step,
                        uint64_t *keep, gt_err *err) {
    *keep = rows;
    if (rows == 0) return 0;
    long long *steps = gt_malloc(rows * sizeof *steps);
    int64_t space = 0, mem = 0;
    hsize_t n = rows, zero = 0;
    int rc = -1;
    H5_SET(space, H5Dget_space(step_ds));
    H5_GO(H5Sselect_hyperslab(space, H5S_SELECT_SET, &zero, NULL, &n, NULL));
    H5_SET(mem, H5Screate_simple(1, &n, NULL));
    H5_GO(H5Dread(step_ds, H5T_NATIVE_LLONG, mem, space, H5P_DEFAULT, steps));
    for (uint64_t i = 0; i < rows; i++) {
        if (steps[i] > resume_step) {
            *keep = i;
            break;
        }
    }
    rc = 0;
out:
    mh5_close(&space);
    mh5_close(&mem);
    free(steps);
    return rc;
}

static int truncate_columns(gt_metrics *m, int64_t *ids, int ncols, uint64_t *rows,
                            long long resume_step, gt_err *err) {
    uint64_t keep;
    int rc = -1;
    if (mh5_rows_to_keep(m, ids[0], *rows, resume_step, &keep, err)) return -1;
    hsize_t n = keep;
    for (int i = 0; i < ncols; i++) H5_GO(H5Dset_extent(ids[i], &n));
    *rows = keep;
    rc = 0;
out:
    return rc;
}

static int open_file(gt_metrics *m, int64_t fapl, long long resume_step, gt_err *err) {
    int rc = -1;
    H5_SET(m->file, H5Fopen(m->path, H5F_ACC_RDWR, fapl));
    if (open_columns(m, "/train", train_names, GT_METRICS_TRAIN_COLS, m->train, &m->ntrain, err) ||
        open_columns(m, "/eval", eval_names, 2, m->eval, &m->neval, err) ||
        truncate_columns(m, m->train, GT_METRICS_TRAIN_COLS, &m->ntrain, resume_step, err) ||
        truncate_columns(m, m->eval, 2, &m->neval, resume_step, err)) {
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* ---- attributes ---- */

/* Attribute name of obj (replaced if there): a scalar of type, or a 1-D array of n when n > 0. */
int mh5_put_attr(gt_metrics *m, int64_t obj, const char *name, int64_t type, unsigned long long n,
                 const void *value, gt_err *err) {
    hsize_t len = n;
    int64_t space = 0, attr = 0;
    htri_t exists;
    int rc = -1;
    H5_SET(exists, H5Aexists(obj, name));
    if (exists) H5_GO(H5Adelete(obj, name));
    if (n > 0) {
        H5_SET(space, H5Screate_simple(1, &len, NULL));
    } else {
        H5_SET(space, H5Screate(H5S_SCALAR));
    }
    H5_SET(attr, H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_GO(H5Awrite(attr, type, value));
    rc = 0;
out:
    mh5_close(&attr);
    mh5_close(&space);
    return rc;
}

static int put_string(gt_metrics *m, const char *name, const char *value, gt_err *err) {
    int64_t type = 0;
    int rc = -1;
    H5_SET(type, H5Tcopy(H5T_C_S1));
    H5_GO(H5Tset_size(type, H5T_VARIABLE));
    H5_GO(H5Tset_cset(type, H5T_CSET_UTF8));
    rc = mh5_put_attr(m, m->file, name, type, 0, &value, err);
out:
    mh5_close(&type);
    return rc;
}

static int write_attrs(gt_metrics *m, const gt_metrics_info *info, gt_err *err) {
    const char *mfu = "MFU = tokens/s x flops_per_token / (989e12 x GPUs); flops_per_token = "
                      "6 x matmul params (tied lm_head included) + 6 x layers x heads x head_dim x seq_len";
    if (put_string(m, "config", info->config_yaml, err) || put_string(m, "grid", info->grid, err) ||
        put_string(m, "version", info->version, err) || put_string(m, "mfu_convention", mfu, err) ||
        put_string(m, "device", info->device ? info->device : "", err)) {
        return -1;
    }
    int on_host = info->on_host;
    if (mh5_put_attr(m, m->file, "on_host", H5T_NATIVE_INT, 0, &on_host, err)) return -1;
    if (mh5_put_attr(m, m->file, "flops_per_token", H5T_NATIVE_DOUBLE, 0, &info->flops_per_token, err)) return -1;
    return mh5_put_attr(m, m->file, "seq_len", H5T_NATIVE_LLONG, 0, &info->seq_len, err);
}

/* ---- files set aside after crashes ---- */

typedef struct {
    char name[256];
    struct timespec mtime;
} crashed_file;

static int older_first(const void *a, const void *b) {
    const crashed_file *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec) return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec) return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Removes all but the newest `keep` files PATH.crashed-* (by modification time: a crashed file keeps
 * the time of its last write), so that a job killed again and again does not fill the run directory.
 * Failures are warnings: the run itself is not at stake. */
static void prune_crashed(const char *path, int keep) {
    char dir[sizeof ((gt_metrics *)0)->path], prefix[sizeof dir + 16];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (slash == dir) snprintf(dir, sizeof dir, "/");
    snprintf(prefix, sizeof prefix, "%s.crashed-", base);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "gemmatron: warning: cannot list %s to remove old %s* files: %s\n", dir, prefix, strerror(errno));
        return;
    }
    crashed_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strlen(e->d_name) >= sizeof files->name) continue;
        char full[sizeof dir + 260];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n == cap) {
            crashed_file *grown = gt_malloc((cap = cap ? 2 * cap : 8) * sizeof *files);
            if (n) memcpy(grown, files, n * sizeof *files);
            free(files);
            files = grown;
        }
        snprintf(files[n].name, sizeof files[n].name, "%s", e->d_name);
        files[n++].mtime = st.st_mtim;
    }
    if (closedir(d) != 0) fprintf(stderr, "gemmatron: warning: closing %s: %s\n", dir, strerror(errno));
    if (n > (size_t)keep) qsort(files, n, sizeof *files, older_first);
    for (size_t i = 0; n > (size_t)keep && i < n - (size_t)keep; i++) {
        char full[sizeof dir + 260];
        snprintf(full, sizeof full, "%s/%s", dir, files[i].name);
        if (unlink(full) != 0) fprintf(stderr, "gemmatron: warning: cannot remove %s: %s\n", full, strerror(errno));
        else fprintf(stderr, "gemmatron: removed %s (only the newest %d crashed metrics files are kept)\n", full, keep);
    }
    free(files);
}

static int metrics_open(gt_metrics *m, const gt_metrics_info *info, long long resume_step, char *aside,
                        size_t aside_len, gt_err *err) {
    int64_t fapl = 0;
    int rc = -1;
    /* SWMR needs the latest file format. */
    H5_SET(fapl, H5Pcreate(H5P_FILE_ACCESS));
    H5_GO(H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST));
    int fresh = access(m->path, F_OK) != 0;
    if (!fresh && open_file(m, fapl, resume_step, err)) {
        /* A process that died while writing leaves the file marked open for SWMR writing: set it
         * aside, start a new file, and copy over the rows an SWMR reader can still see. */
        long now = (long)time(NULL);
        snprintf(aside, aside_len, "%s.crashed-%ld", m->path, now);
        for (int n = 2; access(aside, F_OK) == 0 && n < 1000; n++) /* two crashes in one second */
            snprintf(aside, aside_len, "%s.crashed-%ld-%d", m->path, now, n);
        for (int i = 0; i < GT_METRICS_TRAIN_COLS; i++) mh5_close(&m->train[i]);
        for (int i = 0; i < 2; i++) mh5_close(&m->eval[i]);
        mh5_close(&m->file);
        if (rename(m->path, aside) != 0) {
            rc = gt_fail(err, "%s: cannot set it aside as %s: %s", m->path, aside, strerror(errno));
            goto out;
        }
        prune_crashed(m->path, GT_METRICS_KEEP_CRASHED);
        fresh = 1;
    }
    if (fresh && create_file(m, fapl, err)) goto out;
    if (mh5_fp8_prepare(m, info->fp8, resume_step, err)) goto out;
    if (write_attrs(m, info, err)) goto out;
    /* From here on no object may be created; readers may open the file. */
    H5_GO(H5Fstart_swmr_write(m->file));
    rc = 0;
out:
    mh5_close(&fapl);
    return rc;
}

static void salvage(gt_metrics *m, const char *aside, long long resume_step);

/* HDF5 prints its error stack on every failure unless told not to; the message made from it is
 * enough, so the public calls run with that printing off (and restore it on return). */
int gt_metrics_open(gt_metrics *m, const char *path, const gt_metrics_info *info,
                    long long resume_step, gt_err *err) {
    memset(m, 0, sizeof *m);
    if (snprintf(m->path, sizeof m->path, "%s", path) >= (int)sizeof m->path) {
        return gt_fail(err, "%s: path too long", path);
    }
    int rc = -1;
    char aside[sizeof m->path + 32] = "";
    /* At exit HDF5 closes what is still open; a file whose writes failed (a full disk) cannot be
     * closed, and the library then crashes or prints "infinite loop closing library" with its
     * list of ids. Every file is closed here explicitly (gt_metrics_close), so the library is told
     * not to clean up at exit. Only the first call, before any other HDF5 call, can succeed. */
    static int atexit_off;
    if (!atexit_off) {
        atexit_off = 1;
        if (H5dont_atexit() < 0) fprintf(stderr, "gemmatron: warning: HDF5 H5dont_atexit failed\n");
    }
    H5E_BEGIN_TRY {
        rc = metrics_open(m, info, resume_step, aside, sizeof aside, err);
        if (rc == 0 && aside[0]) salvage(m, aside, resume_step);
    }
    H5E_END_TRY;
    if (rc != 0) gt_metrics_close(m);
    return rc;
}

/* ---- appending ---- */

/* Row `row` of column ds (1-D when cols is 0, else [rows, cols]) set to v, flushed for readers. */
int mh5_append(gt_metrics *m, int64_t ds, uint64_t row, int cols, int64_t type, const void *v, gt_err *err) {
    int rank = cols ? 2 : 1;
    hsize_t size[2] = {row + 1, (hsize_t)cols}, at[2] = {row, 0}, one[2] = {1, (hsize_t)cols};
    int64_t space = 0, mem = 0;
    int rc = -1;
    H5_GO(H5Dset_extent(ds, size));
    H5_SET(space, H5Dget_space(ds));
    H5_GO(H5Sselect_hyperslab(space, H5S_SELECT_SET, at, NULL, one, NULL));
    H5_SET(mem, H5Screate_simple(rank, one, NULL));
    H5_GO(H5Dwrite(ds, type, mem, space, H5P_DEFAULT, v));
    H5_GO(H5Dflush(ds));
    rc = 0;
out:
    mh5_close(&space);
    mh5_close(&mem);
    return rc;
}

static int append_train(gt_metrics *m, const gt_train_row *row, gt_err *err) {
    const double v[GT_METRICS_TRAIN_COLS - 1] = {row->loss,        row->lr,  row->grad_norm,
                                                 row->tokens_per_s, row->mfu, row->step_time_s,
                                                 row->gpu_mem_gib};
    for (int i = 1; i < GT_METRICS_TRAIN_COLS; i++) {
        if (mh5_append(m, m->train[i], m->ntrain, 0, H5T_NATIVE_DOUBLE, &v[i - 1], err)) return -1;
    }
    if (mh5_append(m, m->train[0], m->ntrain, 0, H5T_NATIVE_LLONG, &row->step, err)) return -1;
    m->ntrain++;
    return 0;
}

static int append_eval(gt_metrics *m, long long step, double loss, gt_err *err) {
    if (mh5_append(m, m->eval[1], m->neval, 0, H5T_NATIVE_DOUBLE, &loss, err)) return -1;
    if (mh5_append(m, m->eval[0], m->neval, 0, H5T_NATIVE_LLONG, &step, err)) return -1;
    m->neval++;
    return 0;
}

int gt_metrics_append_train(gt_metrics *m, const gt_train_row *row, gt_err *err) {
    int rc = -1;
    H5E_BEGIN_TRY { rc = append_train(m, row, err); }
    H5E_END_TRY;
    return rc;
}

int gt_metrics_append_eval(gt_metrics *m, long long step, double loss, gt_err *err) {
    int rc = -1;
    H5E_BEGIN_TRY { rc = append_eval(m, step, loss, err); }
    H5E_END_TRY;
    return rc;
}

void gt_metrics_close(gt_metrics *m) {
    mh5_fp8_close(m);
    for (int i = 0; i < GT_METRICS_TRAIN_COLS; i++) mh5_close(&m->train[i]);
    for (int i = 0; i < 2; i++) mh5_close(&m->eval[i]);
    mh5_close(&m->file);
}

/* ---- recovery after a crash ---- */

/* Reads column `name` of the crashed file (n rows) as doubles. */
static int read_column(gt_metrics *m, const char *name, uint64_t n, double *out, gt_err *err) {
    int64_t ds = 0, space = 0, mem = 0;
    hsize_t count = n, zero = 0;
    int rc = -1;
    H5_SET(ds, H5Dopen2(m->file, name, H5P_DEFAULT));
    H5_SET(space, H5Dget_space(ds));
    H5_GO(H5Sselect_hyperslab(space, H5S_SELECT_SET, &zero, NULL, &count, NULL));
    H5_SET(mem, H5Screate_simple(1, &count, NULL));
    H5_GO(H5Dread(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, out));
    rc = 0;
out:
    mh5_close(&mem);
    mh5_close(&space);
    mh5_close(&ds);
    return rc;
}

int mh5_read_columns(gt_metrics *m, const char *group, const char *const *names, int ncols, double **cols,
                     uint64_t *rows, gt_err *err) {
    int64_t ids[GT_METRICS_TRAIN_COLS] = {0};
    GT_ASSERT(ncols <= GT_METRICS_TRAIN_COLS, "mh5_read_columns: %d columns", ncols);
    *cols = NULL;
    int rc = open_columns(m, group, names, ncols, ids, rows, err);
    for (int i = 0; i < ncols; i++) mh5_close(&ids[i]);
    if (rc) return -1;
    *cols = gt_malloc((*rows ? *rows : 1) * (size_t)ncols * sizeof(double));
    char name[64];
    for (int i = 0; i < ncols && rc == 0 && *rows; i++) {
        snprintf(name, sizeof name, "%s/%s", group, names[i]);
        rc = read_column(m, name, *rows, *cols + (size_t)i * *rows, err);
    }
    if (rc) {
        free(*cols);
        *cols = NULL;
    }
    return rc;
}

/* Copies the rows of group (train or eval) with step <= resume_step from the crashed file. */
static int copy_rows(gt_metrics *m, gt_metrics *old, int train, long long resume_step, gt_err *err) {
    const char *group = train ? "/train" : "/eval";
    const char *const *names = train ? train_names : eval_names;
    int ncols = train ? GT_METRICS_TRAIN_COLS : 2;
    uint64_t rows;
    double *cols;
    int rc = mh5_read_columns(old, group, names, ncols, &cols, &rows, err);
    if (rc) return -1;
    for (uint64_t r = 0; r < rows && rc == 0; r++) {
        long long step = (long long)cols[r];
        if (step > resume_step) break;
        if (train) {
            gt_train_row row = {step,           cols[rows + r],     cols[2 * rows + r], cols[3 * rows + r],
                                cols[4 * rows + r], cols[5 * rows + r], cols[6 * rows + r], cols[7 * rows + r]};
            rc = gt_metrics_append_train(m, &row, err);
        } else {
            rc = gt_metrics_append_eval(m, step, cols[rows + r], err);
        }
    }
    free(cols);
    return rc;
}

static void salvage(gt_metrics *m, const char *aside, long long resume_step) {
    gt_metrics old;
    gt_err err;
    memset(&old, 0, sizeof old);
    snprintf(old.path, sizeof old.path, "%s", aside);
    int64_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    old.file = H5Fopen(aside, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    int ok = old.file >= 0 && copy_rows(m, &old, 1, resume_step, &err) == 0 && copy_rows(m, &old, 0, resume_step, &err) == 0 &&
             (!m->fp8_count || mh5_fp8_salvage(m, &old, resume_step, &err) == 0);
    mh5_close(&old.file);
    mh5_close(&fapl);
    fprintf(stderr, "gemmatron: warning: %s was left open by a process that died; %s (%llu rows); the old file is %s\n",
            m->path, ok ? "its rows were copied into a new one" : "a new one was started", (unsigned long long)m->ntrain,
            aside);
}
