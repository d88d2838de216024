/* Choosing and creating the compute backend for a run: "cuda" when a GPU is present (or asked
 * for), else "cpu". */
#ifndef GT_TRAIN_BACKEND_H
#define GT_TRAIN_BACKEND_H

#include "../kernels/ops.h"

typedef struct {
    const gt_ops *ops;
    gt_backend *be;
    int is_cuda;
} gt_compute;

/* name: "auto", "cpu", "cpu64" or "cuda"; local_rank picks the GPU. */
int gt_compute_open(gt_compute *c, const char *name, int local_rank, gt_err *err);
void gt_compute_close(gt_compute *c);
/* The CUDA stream every op runs on (NULL on the CPU), for NCCL. */
void *gt_compute_stream(gt_compute *c);

#endif
