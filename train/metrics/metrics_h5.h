/* Internals of metrics.h5 shared by train/metrics/metrics.c and train/metrics/metrics_fp8.c: HDF5 error handling
 * and the /fp8 group's life cycle. */
#ifndef GT_METRICS_H5_H
#define GT_METRICS_H5_H

#include <hdf5.h>

#include "metrics.h"

/* One line for a failed HDF5 call: file, call, source file and line, and the innermost reason from
 * HDF5's error stack (which is then cleared). Returns -1. */
int mh5_fail(const gt_metrics *m, gt_err *err, const char *call, const char *file, int line);
/* Closes an id of any kind if it is open, and zeroes it. */
void mh5_close(int64_t *id);
/* Attribute name of obj (replaced if there): a scalar of type, or a 1-D array of n when n > 0. */
int mh5_put_attr(gt_metrics *m, int64_t obj, const char *name, int64_t type, unsigned long long n,
                 const void *value, gt_err *err);
/* Row `row` of column ds (1-D when cols is 0, else [rows, cols]) set to v, flushed for readers. */
int mh5_append(gt_metrics *m, int64_t ds, uint64_t row, int cols, int64_t type, const void *v, gt_err *err);

/* The 1-D columns group/names[0..ncols) (ncols <= GT_METRICS_TRAIN_COLS) read as doubles into
 * *cols = [ncols][rows] (malloc'ed; the caller frees), rows = the shortest column's (a row
 * half-written by a crash is dropped). */
int mh5_read_columns(gt_metrics *m, const char *group, const char *const *names, int ncols, double **cols,
                     uint64_t *rows, gt_err *err);

/* Of the first `rows` rows of the 1-D int64 dataset step_ds, those before the first step greater
 * than resume_step (steps increase down the column). */
int mh5_rows_to_keep(gt_metrics *m, int64_t step_ds, uint64_t rows, long long resume_step, uint64_t *keep,
                     gt_err *err);

/* In a function with `int rc = -1` and a cleanup label `out`: var = call (a hid_t), or the message
 * and a jump to out. H5_GO does the same for a call that returns a status. */
#define H5_SET(var, call)                                                                          \
    if (((var) = (int64_t)(call)) < 0) {                                                           \
        rc = mh5_fail(m, err, #call, __FILE__, __LINE__);                                          \
        goto out;                                                                                  \
    }
#define H5_GO(call)                                                                                \
    if ((int64_t)(call) < 0) {                                                                     \
        rc = mh5_fail(m, err, #call, __FILE__, __LINE__);                                          \
        goto out;                                                                                  \
    }

/* ---- /fp8 (train/metrics/metrics_fp8.c) ---- */

/* Before single-writer mode starts (no object can be created after it): with FP8 (info), opens or
 * creates /fp8/{step, amax, scale} (recreated when their column count is not info->count), keeps
 * the rows of steps <= resume_step, and writes /fp8's attributes; without FP8, only drops the rows
 * after resume_step of datasets an earlier FP8 run left there. */
int mh5_fp8_prepare(gt_metrics *m, const gt_metrics_fp8_info *info, long long resume_step, gt_err *err);
/* Copies the /fp8 rows of steps <= resume_step from a crashed file open as old (same columns). */
int mh5_fp8_salvage(gt_metrics *m, gt_metrics *old, long long resume_step, gt_err *err);
void mh5_fp8_close(gt_metrics *m);

#endif
