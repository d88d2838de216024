/* Choosing and creating a compute backend by name: "cuda" when a GPU is present (or asked for),
 * else "cpu". The one place that knows which backends this build has; everything after creation
 * goes through the op table (kernels/ops.h: its stream, memory in use, device name, peak rates). */
#ifndef GT_KERNELS_BACKEND_H
#define GT_KERNELS_BACKEND_H

#include "ops.h"

typedef struct {
    const gt_ops *ops;
    gt_backend *be;
} gt_compute;

/* name: "auto", "cpu", "cpu64" or "cuda". slot picks the GPU: device slot mod the number of
 * visible devices (a process's node-local index, so that the processes of a node share its GPUs
 * one each). */
int gt_compute_open(gt_compute *c, const char *name, int slot, gt_err *err);
void gt_compute_close(gt_compute *c);

#endif
