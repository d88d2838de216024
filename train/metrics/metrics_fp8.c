/* metrics.h5 /fp8: per-tensor amax and scale of FP8 runs (train/metrics/metrics.h), written by rank 0 every
 * fp8.log_every steps. step is 1-D int64; amax and scale are 2-D float32 [rows, count], chunked by
 * whole rows, so a reader takes the latest row, or one tensor's column, without reading it all.
 * The column names are an attribute of /fp8 (tensors). */
#include <stdio.h>
#include <stdlib.h>

#include "metrics_h5.h"

/* 64 rows x 12 tensors per layer x 4 bytes: 3 KB per layer, a few hundred KB for Gemma-7B. */
#define FP8_CHUNK_ROWS 64

enum { C_STEP = 0, C_AMAX, C_SCALE, NCOL };
static const char *const col_name[NCOL] = {"step", "amax", "scale"};

/* Column c's dataset in the group: step [0] int64, amax and scale [0, count] float32. */
static int create_col(gt_metrics *m, int64_t group, int c, int count, int64_t *ds, gt_err *err) {
    int rank = c == C_STEP ? 1 : 2;
    hsize_t zero[2] = {0, (hsize_t)count}, max[2] = {H5S_UNLIMITED, (hsize_t)count};
    hsize_t chunk[2] = {FP8_CHUNK_ROWS, (hsize_t)count};
    int64_t space = 0, dcpl = 0;
    int rc = -1;
    H5_SET(space, H5Screate_simple(rank, zero, max));
    H5_SET(dcpl, H5Pcreate(H5P_DATASET_CREATE));
    H5_GO(H5Pset_chunk(dcpl, rank, chunk));
    H5_SET(*ds, H5Dcreate2(group, col_name[c], c == C_STEP ? H5T_STD_I64LE : H5T_IEEE_F32LE, space, H5P_DEFAULT,
                           dcpl, H5P_DEFAULT));
    rc = 0;
out:
    mh5_close(&space);
    mh5_close(&dcpl);
    return rc;
}

/* Rows (dims[0]) and columns (dims[1], 0 for 1-D) of a dataset. */
static int dims_of(gt_metrics *m, int64_t ds, uint64_t *rows, int *cols, gt_err *err) {
    int64_t space = 0;
    hsize_t d[2] = {0, 0};
    int rc = -1, rank;
    H5_SET(space, H5Dget_space(ds));
    H5_SET(rank, H5Sget_simple_extent_ndims(space));
    if (rank < 1 || rank > 2) {
        rc = gt_fail(err, "%s: an /fp8 dataset of rank %d", m->path, rank);
        goto out;
    }
    H5_GO(H5Sget_simple_extent_dims(space, d, NULL));
    *rows = d[0];
    *cols = rank == 2 ? (int)d[1] : 0;
    rc = 0;
out:
    mh5_close(&space);
    return rc;
}

/* Opens the three columns of group into ids when they are all there with the same column count
 * for amax and scale (*count), and *rows = the rows complete in all three; *count = 0 when the
 * group has none of them. A partial or inconsistent set (left by an interrupted run) is removed. */
static int open_cols(gt_metrics *m, int64_t group, int64_t *ids, int *count, uint64_t *rows, gt_err *err) {
    int rc = -1, present = 0, cols[NCOL] = {0};
    uint64_t n[NCOL] = {0};
    *count = 0;
    *rows = 0;
    for (int c = 0; c < NCOL; c++) {
        htri_t has;
        H5_SET(has, H5Lexists(group, col_name[c], H5P_DEFAULT));
        if (!has) continue;
        present++;
        H5_SET(ids[c], H5Dopen2(group, col_name[c], H5P_DEFAULT));
        if (dims_of(m, ids[c], &n[c], &cols[c], err)) goto out;
    }
    int whole = present == NCOL && cols[C_STEP] == 0 && cols[C_AMAX] > 0 && cols[C_AMAX] == cols[C_SCALE];
    if (present && !whole) {
        for (int c = 0; c < NCOL; c++) {
            mh5_close(&ids[c]);
            H5E_BEGIN_TRY { H5Ldelete(group, col_name[c], H5P_DEFAULT); }
            H5E_END_TRY;
        }
    }
    if (whole) {
        *count = cols[C_AMAX];
        *rows = n[0] < n[1] ? n[0] : n[1];
        if (n[2] < *rows) *rows = n[2]; /* a row half-written by a crash is dropped */
    }
    rc = 0;
out:
    return rc;
}

/* Keeps the rows of steps <= resume_step. */
static int truncate_cols(gt_metrics *m, int64_t *ids, int count, uint64_t rows, long long resume_step,
                         uint64_t *kept, gt_err *err) {
    int rc = -1;
    if (mh5_rows_to_keep(m, ids[C_STEP], rows, resume_step, kept, err)) return -1;
    hsize_t d[2] = {*kept, (hsize_t)count};
    for (int c = 0; c < NCOL; c++) H5_GO(H5Dset_extent(ids[c], d));
    rc = 0;
out:
    return rc;
}

static int write_attrs(gt_metrics *m, int64_t group, const gt_metrics_fp8_info *info, gt_err *err) {
    int64_t str = 0;
    int rc = -1;
    long long len = info->history_len;
    H5_SET(str, H5Tcopy(H5T_C_S1));
    H5_GO(H5Tset_size(str, H5T_VARIABLE));
    H5_GO(H5Tset_cset(str, H5T_CSET_UTF8));
    if (mh5_put_attr(m, group, "tensors", str, (hsize_t)info->count, info->names, err) ||
        mh5_put_attr(m, group, "algo", str, 0, &info->algo, err) ||
        mh5_put_attr(m, group, "history_len", H5T_NATIVE_LLONG, 0, &len, err) ||
        mh5_put_attr(m, group, "margin", H5T_NATIVE_DOUBLE, 0, &info->margin, err))
        goto out;
    rc = 0;
out:
    mh5_close(&str);
    return rc;
}

int mh5_fp8_prepare(gt_metrics *m, const gt_metrics_fp8_info *info, long long resume_step, gt_err *err) {
    int64_t group = 0;
    htri_t has;
    int rc = -1, count;
    uint64_t rows;
    m->fp8_count = 0;
    H5_SET(has, H5Lexists(m->file, "/fp8", H5P_DEFAULT));
    if (has) {
        H5_SET(group, H5Gopen2(m->file, "/fp8", H5P_DEFAULT));
    } else { /* a file from before /fp8 existed */
        H5_SET(group, H5Gcreate2(m->file, "/fp8", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    }
    if (open_cols(m, group, m->fp8, &count, &rows, err)) goto out;
    if (count && info && count != info->count) { /* another model's tensors: start the columns afresh */
        mh5_fp8_close(m);
        for (int c = 0; c < NCOL; c++) H5_GO(H5Ldelete(group, col_name[c], H5P_DEFAULT));
        count = 0;
    }
    if (count && truncate_cols(m, m->fp8, count, rows, resume_step, &m->nfp8, err)) goto out;
    if (!info) {
        mh5_fp8_close(m);
        rc = 0;
        goto out;
    }
    for (int c = 0; c < NCOL && !count; c++)
        if (create_col(m, group, c, info->count, &m->fp8[c], err)) goto out;
    if (write_attrs(m, group, info, err)) goto out;
    m->fp8_count = info->count;
    rc = 0;
out:
    mh5_close(&group);
    return rc;
}

void mh5_fp8_close(gt_metrics *m) {
    for (int c = 0; c < NCOL; c++) mh5_close(&m->fp8[c]);
    m->fp8_count = 0;
}

/* step last: a reader sees whole rows up to len(step). */
static int append_row(gt_metrics *m, long long step, const float *amax, const float *scale, gt_err *err) {
    int n = m->fp8_count;
    if (mh5_append(m, m->fp8[C_AMAX], m->nfp8, n, H5T_NATIVE_FLOAT, amax, err) ||
        mh5_append(m, m->fp8[C_SCALE], m->nfp8, n, H5T_NATIVE_FLOAT, scale, err) ||
        mh5_append(m, m->fp8[C_STEP], m->nfp8, 0, H5T_NATIVE_LLONG, &step, err))
        return -1;
    m->nfp8++;
    return 0;
}

int gt_metrics_append_fp8(gt_metrics *m, long long step, const float *amax, const float *scale, gt_err *err) {
    GT_ASSERT(m->fp8_count > 0, "%s: an /fp8 row, but the file was opened without FP8", m->path);
    int rc = -1;
    H5E_BEGIN_TRY { rc = append_row(m, step, amax, scale, err); }
    H5E_END_TRY;
    return rc;
}

/* Reads the first rows of column c of the crashed file's /fp8 (cols values per row). */
static int read_col(gt_metrics *old, int64_t ds, uint64_t rows, int cols, hid_t type, void *out, gt_err *err) {
    gt_metrics *m = old;
    int rank = cols ? 2 : 1;
    hsize_t zero[2] = {0, 0}, n[2] = {rows, (hsize_t)cols};
    int64_t space = 0, mem = 0;
    int rc = -1;
    H5_SET(space, H5Dget_space(ds));
    H5_GO(H5Sselect_hyperslab(space, H5S_SELECT_SET, zero, NULL, n, NULL));
    H5_SET(mem, H5Screate_simple(rank, n, NULL));
    H5_GO(H5Dread(ds, type, mem, space, H5P_DEFAULT, out));
    rc = 0;
out:
    mh5_close(&mem);
    mh5_close(&space);
    return rc;
}

int mh5_fp8_salvage(gt_metrics *m, gt_metrics *old, long long resume_step, gt_err *err) {
    int64_t group = 0, ids[NCOL] = {0};
    int count = 0, rc = -1;
    uint64_t rows = 0;
    group = H5Gopen2(old->file, "/fp8", H5P_DEFAULT);
    if (group < 0) return gt_fail(err, "%s: no /fp8 group", old->path);
    if (open_cols(old, group, ids, &count, &rows, err)) goto done;
    if (count != m->fp8_count || rows == 0) { /* nothing to copy into these columns */
        rc = 0;
        goto done;
    }
    long long *steps = gt_malloc(rows * sizeof *steps);
    float *amax = gt_malloc(rows * (size_t)count * sizeof *amax), *scale = gt_malloc(rows * (size_t)count * sizeof *scale);
    rc = read_col(old, ids[C_STEP], rows, 0, H5T_NATIVE_LLONG, steps, err);
    if (rc == 0) rc = read_col(old, ids[C_AMAX], rows, count, H5T_NATIVE_FLOAT, amax, err);
    if (rc == 0) rc = read_col(old, ids[C_SCALE], rows, count, H5T_NATIVE_FLOAT, scale, err);
    for (uint64_t r = 0; r < rows && rc == 0 && steps[r] <= resume_step; r++)
        rc = gt_metrics_append_fp8(m, steps[r], amax + r * (size_t)count, scale + r * (size_t)count, err);
    free(steps);
    free(amax);
    free(scale);
done:
    for (int c = 0; c < NCOL; c++) mh5_close(&ids[c]);
    mh5_close(&group);
    return rc;
}
