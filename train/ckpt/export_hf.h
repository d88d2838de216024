/* The trained model as an HF model directory, written by the ranks in parallel (any tp x dp):
 * DIR/config.json, generation_config.json and model.safetensors (or shards + index above 5 GB),
 * weights in dtype (GT_BF16, GT_F16 or GT_F32) under their full HF names. Each rank of dp replica 0 writes
 * the slices it holds (as the checkpoint writer does); the directory is built as DIR.tmp and
 * renamed over DIR when complete, so DIR is always the previous export or the whole new one.
 * Collective over the grid's world. */
#ifndef GT_EXPORT_HF_H
#define GT_EXPORT_HF_H

#include "../../comm/grid.h"
#include "../../model/model.h"

int gt_export_hf(gt_model *m, gt_grid *g, const char *dir, gt_dtype dtype, gt_err *err);

#endif
