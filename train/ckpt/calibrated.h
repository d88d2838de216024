/* An FP8-calibrated model directory (`gemmatron calibrate`; docs/checkpoints.md): an HF model
 * directory (config.json, generation_config.json, model.safetensors, as gt_export_hf writes it)
 * plus fp8_state.safetensors, the delayed-scaling state (amax histories and scales) after
 * calibration, in the checkpoint's format with calibration.steps added (train/ckpt/ckpt_fp8.c).
 *
 * The state is replicated on every rank and does not depend on tp (model/fp8_state.h): rank 0
 * writes it whole, every rank reads all of it, on any layout. A checkpoint directory holds the same
 * file without calibration.steps, so everything below reads a checkpoint's state as well. */
#ifndef GT_CALIBRATED_H
#define GT_CALIBRATED_H

#include "../../comm/grid.h"
#include "../../model/model.h"
#include "checkpoint.h"

/* What a directory's fp8_state.safetensors holds. */
typedef struct {
    gt_ckpt_fp8 fp8;       /* tensor count, history length, recipe */
    long long calibrated;  /* calibration.steps; -1: none recorded (a checkpoint's state) */
} gt_fp8_file;

/* Writes dir as above from the model (its FP8 state calibrated on `steps` steps of batches): the
 * weights in the model's config dtype (BF16, F16, else F32). Collective over the grid's world. */
int gt_calibrated_save(gt_model *m, gt_grid *g, const char *dir, long long steps, gt_err *err);

/* The FP8 recipe of dir's state: history length, algo and margin from the file, the lm_head from
 * its tensor count (12 L + 3 with it). 1 with r filled, 0 when dir has no fp8_state.safetensors,
 * -1 (err) when it is unreadable. Local. */
int gt_fp8_state_recipe(const char *dir, gt_fp8_recipe *r, gt_err *err);

/* Loads dir's FP8 state into the model, whose FP8 must be on (gt_model_enable_fp8): 1 loaded (info
 * filled, may be NULL), 0 when dir has no fp8_state.safetensors, -1 (err) for a state that does not
 * fit: another history length or lm_head setting (naming the fp8.* key and the value to use),
 * another tensor count or format order. The recipe's algo and margin may differ: the model's apply
 * to the updates from now on. The FP8 weight copies are recast with the loaded scales before the
 * next forward. Local: every rank reads the whole file. */
int gt_fp8_state_load(gt_model *m, const char *dir, gt_fp8_file *info, gt_err *err);

/* For running a calibrated model (e.g. generation in FP8): FP8 on with dir's recipe (amaxes
 * MAX-reduced over amax_group, NULL: one process), then its state loaded. 1, 0 (no state: FP8 left
 * off) or -1 (err). */
int gt_fp8_state_enable(gt_model *m, const char *dir, gt_group *amax_group, gt_err *err);

#endif
