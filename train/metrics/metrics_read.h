/* Reading back the totals of a run's metrics.h5 (train/metrics/metrics.h): what the run summary
 * (train/run_summary.h) reports of a finished, running or killed run. Opened read-only with SWMR,
 * so a file another process is still writing, or one a killed process left marked open, reads as
 * the complete rows it holds. */
#ifndef GT_METRICS_READ_H
#define GT_METRICS_READ_H

#include "../../core/base.h"

typedef struct {
    long long rows;            /* /train rows: optimizer steps recorded */
    long long last_step;       /* /train/step of the last row (0: none) */
    long long skipped;         /* rows with a non-finite grad_norm (skipped steps) */
    double tokens;             /* sum over the rows of tokens_per_s x step_time_s, each rounded */
    double seconds;            /* sum of step_time_s */
    double first_loss, last_loss;
    long long first_step;
    long long evals;           /* /eval rows */
    long long best_eval_step;  /* step of the lowest finite eval loss (0: none) */
    double best_eval_loss;
    long long last_eval_step;
    double last_eval_loss;
    char grid[64];             /* the grid attribute, "dp=D tp=T" ("" when absent) */
} gt_metrics_totals;

/* Fills tot from path; one line naming the file and HDF5's reason when it cannot be read. */
int gt_metrics_read_totals(const char *path, gt_metrics_totals *tot, gt_err *err);

#endif
