/* RUN_DIR/metrics.h5: the training curves, written by rank 0 and readable while the run goes on
 * (HDF5 single-writer/multiple-reader, latest file format).
 *
 *   /train/{step, loss, lr, grad_norm, tokens_per_s, mfu, step_time_s, gpu_mem_gib}
 *                         one row per optimizer step: 1-D, extendible, chunked; step int64, the
 *                         rest float64. A skipped step (non-finite gradient) has a non-finite
 *                         grad_norm.
 *   /eval/{step, loss}    one row per evaluation
 *   /fp8/{step, amax, scale}
 *                         FP8 runs (train/metrics/metrics_fp8.c): one row every fp8.log_every steps; step
 *                         int64 [rows], amax and scale float32 [rows, count], 2-D, extendible,
 *                         chunked. amax is each tensor's newest amax (history slot len-1: the
 *                         amax of the last update, MAX-reduced over the grid), scale its current
 *                         scale. Attributes of /fp8: tensors (the names of the columns, in order:
 *                         "layers.0.qkv.input", ...; model/fp8_state.h), history_len, algo, margin.
 *                         With history_len 1 the roll leaves no amax behind (amax reads 0):
 *                         scale = fp8_max / amax / 2^margin then tells the amax. Empty without FP8.
 *   attributes of /:      config (the resolved run config, YAML), grid ("dp=D tp=T"), version,
 *                         flops_per_token (model/flops.h), seq_len, mfu_convention, device (the
 *                         backend and its device: "cpu", "cuda NVIDIA H200"), on_host (int: 1 on the
 *                         CPU backends, whose mfu is only the formula against a GPU's peak and whose
 *                         gpu_mem_gib is 0)
 *
 * Each row is appended and flushed dataset by dataset with `step` last, so a reader that opens the
 * file with SWMR (h5py: File(path, "r", libver="latest", swmr=True), then refresh()) sees complete
 * rows up to len(step). Reopening an existing file (a resumed run) appends to it after dropping the
 * rows of steps later than the step the run resumes from (they are about to be run again). */
#ifndef GT_METRICS_H
#define GT_METRICS_H

#include "../../core/base.h"

typedef struct {
    long long step;
    double loss, lr, grad_norm, tokens_per_s, mfu, step_time_s, gpu_mem_gib;
} gt_train_row;

/* What /fp8 holds in an FP8 run. */
typedef struct {
    int count;                /* FP8 tensors */
    const char *const *names; /* [count] */
    int history_len;
    const char *algo;         /* "max" or "most_recent" */
    double margin;
} gt_metrics_fp8_info;

typedef struct {
    const char *config_yaml;
    const char *grid;
    const char *version;
    double flops_per_token;
    long long seq_len;
    const char *device;             /* "cpu", "cuda NVIDIA H200", ... */
    int on_host;                    /* gt_ops.on_host of the backend */
    const gt_metrics_fp8_info *fp8; /* NULL: no FP8 (/fp8 stays empty) */
} gt_metrics_info;

#define GT_METRICS_TRAIN_COLS 8

typedef struct {
    char path[4096];
    int64_t file;                           /* hid_t */
    int64_t train[GT_METRICS_TRAIN_COLS];   /* dataset ids, in gt_train_row order */
    int64_t eval[2];
    uint64_t ntrain, neval;                 /* rows */
    int64_t fp8[3];                         /* /fp8/step, amax, scale (0: no FP8) */
    uint64_t nfp8;
    int fp8_count;
} gt_metrics;

/* How many files PATH.crashed-* are kept: a file left open by a process that died is set aside under
 * that name (its rows copied into a new PATH), and then all but the newest few are removed. */
#define GT_METRICS_KEEP_CRASHED 3

/* Creates path, or opens it to append; rows with step > resume_step are dropped; the attributes
 * are (re)written from info; then single-writer mode starts. A file left open by a process that
 * died is set aside as path.crashed-TIME (only the newest GT_METRICS_KEEP_CRASHED are kept). Every
 * HDF5 failure gets one line naming the file, the call and HDF5's reason. */
int gt_metrics_open(gt_metrics *m, const char *path, const gt_metrics_info *info,
                    long long resume_step, gt_err *err);
int gt_metrics_append_train(gt_metrics *m, const gt_train_row *row, gt_err *err);
int gt_metrics_append_eval(gt_metrics *m, long long step, double loss, gt_err *err);
/* One /fp8 row: amax[count], scale[count] (train/metrics/metrics_fp8.c). Only after an open with FP8. */
int gt_metrics_append_fp8(gt_metrics *m, long long step, const float *amax, const float *scale, gt_err *err);
/* Closes everything; safe on a zeroed or failed gt_metrics. */
void gt_metrics_close(gt_metrics *m);

#endif
