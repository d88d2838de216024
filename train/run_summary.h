/* The summary of a run directory, printed by `train` when it ends and by `gemmatron inspect RUN_DIR`:
 * steps, tokens, training time, the best evaluation and its step, the checkpoints kept, where the final
 * model and the plots are, and the command that resumes the run. Everything is derived from what the directory holds
 * (metrics.h5, checkpoint-N/, latest, final/, config.yaml), so it is the same for a finished run, one
 * still running and one that was killed. */
#ifndef GT_RUN_SUMMARY_H
#define GT_RUN_SUMMARY_H

#include <stdio.h>

#include "../core/base.h"
#include "metrics/metrics_read.h"

typedef struct {
    int has_metrics;        /* metrics.h5 read */
    gt_metrics_totals m;
    char metrics_note[1024]; /* why metrics.h5 was not read ("" when it was, or is absent) */
    long long steps_total;  /* train.steps of config.yaml (0: no config.yaml) */
    int world;              /* processes of the grid (dp x tp), from metrics.h5, else config.yaml's tp */
    long long *ckpt_steps;  /* checkpoint-N directories, ascending */
    int nckpt;
    char latest[256];       /* what `latest` names ("" when absent) */
    int has_final;          /* final/config.json exists */
    int has_plots;          /* plots/loss.png exists (scripts/plot_metrics.py, metrics.plot_every) */
} gt_run_summary;

/* Reads run_dir; fails only when run_dir cannot be listed. */
int gt_run_summary_load(const char *run_dir, gt_run_summary *s, gt_err *err);
void gt_run_summary_print(const gt_run_summary *s, const char *run_dir, FILE *out);
void gt_run_summary_free(gt_run_summary *s);

#endif
