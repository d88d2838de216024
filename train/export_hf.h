/* The trained model as an HF checkpoint directory: DIR/config.json and DIR/model.safetensors (in the
 * config's dtype: BF16, F16, else F32), written to DIR.tmp and renamed over DIR when complete, so
 * DIR is always either the previous export or the whole new one. tp = 1 only for now: a
 * tensor-parallel model is written by the checkpoint writer, which stores full tensors from every
 * rank's slices. */
#ifndef GT_EXPORT_HF_H
#define GT_EXPORT_HF_H

#include "../model/model.h"

int gt_export_hf(const gt_model *m, const char *dir, gt_err *err);

#endif
