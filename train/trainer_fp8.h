/* FP8 training in `gemmatron train` (the run config's fp8.* keys; DESIGN.md §4): turning the
 * model's FP8 GEMMs on, and the per-tensor amax and scale rows of metrics.h5 /fp8. Calibration is
 * gt_trainer_fp8_calibrate (train/trainer.h); the state's checkpointing is train/ckpt/ckpt_fp8.c. */
#ifndef GT_TRAINER_FP8_H
#define GT_TRAINER_FP8_H

#include "trainer.h"

/* After the model is built and tensor-parallel: FP8 with the config's recipe, amaxes MAX-reduced
 * over the whole tp x dp world (none on one process). Fails when the backend has no FP8 ops. */
int gt_trainer_fp8_enable(gt_trainer *t, gt_err *err);

/* A new run whose model.path holds FP8 state (fp8_state.safetensors of a calibrated model or of a
 * checkpoint; train/ckpt/calibrated.h): the state is loaded and the calibration steps are skipped,
 * said in one line. Nothing without FP8 or without that file. Collective: a failure on any rank
 * fails every rank. */
int gt_trainer_fp8_from_model(gt_trainer *t, gt_err *err);

/* What metrics.h5 /fp8 holds for this run, or NULL without FP8. The tensor names are malloc'ed
 * into info->names: free with gt_trainer_fp8_info_free. */
const gt_metrics_fp8_info *gt_trainer_fp8_info(const gt_trainer *t, gt_metrics_fp8_info *info);
void gt_trainer_fp8_info_free(gt_metrics_fp8_info *info);

/* Rank 0, after step t->step: appends the /fp8 row when FP8 is on and fp8.log_every divides the
 * step. */
int gt_trainer_fp8_record(gt_trainer *t, gt_metrics *metrics, gt_err *err);

/* The line describing the FP8 setup, printed at start. */
void gt_trainer_fp8_print(const gt_trainer *t);

#endif
