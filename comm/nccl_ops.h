/* The NCCL side of gt_group's collectives (comm/nccl_ops.c, built when NCCL is found). */
#ifndef GT_NCCL_OPS_H
#define GT_NCCL_OPS_H

#include "group.h"

/* Creates g->nccl from a unique id made by rank 0 of g->mpi and broadcast over MPI. */
void gt_nccl_group_init(gt_group *g, void *stream);
void gt_nccl_group_free(gt_group *g);
/* Waits for the group's stream (for timing collectives). */
void gt_nccl_sync(gt_group *g);
/* gt_allreduce_start / gt_group_wait over NCCL, and the release of their stream and events. */
void gt_nccl_allreduce_start(gt_group *g, void *buf, size_t n, gt_dtype t);
void gt_nccl_wait(gt_group *g);
void gt_nccl_reduce_owners_start(gt_group *g, void *buf, size_t off, size_t n, size_t block, gt_dtype t);
void gt_nccl_release_stream(gt_group *g);
void gt_nccl_allreduce(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op);
void gt_nccl_allgather(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t);
void gt_nccl_reduce_scatter(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t, gt_red op);
void gt_nccl_broadcast(gt_group *g, void *buf, size_t n, gt_dtype t, int root);

#endif
