/* The process grid: MPI start-up, world = dp x tp with tp innermost (ranks r and r+1 of a node
 * share a tp group), the GPU of each process from its node-local rank, and one group (and, on GPUs,
 * one NCCL communicator) per dimension. */
#ifndef GT_GRID_H
#define GT_GRID_H

#include "group.h"
#include "watchdog.h"

typedef struct {
    int world_rank, world_size;
    int local_rank, local_size; /* within the node (MPI_COMM_TYPE_SHARED) */
    int tp, dp, tp_rank, dp_rank;
    gt_group world, tp_group, dp_group;
    gt_watchdog *wd;
    int owns_mpi; /* MPI_Init was called here */
} gt_grid;

/* Under mpirun/srun: starts MPI (unless already started) and splits the world into tp groups of size tp and dp groups
 * across them. Fails with the reason when the world size is not a multiple of tp. The watchdog
 * timeout comes from GT_COMM_TIMEOUT (seconds, default 600; 0 disables). Started without a
 * launcher, the grid is one process (tp must be 1) and MPI is not used at all. */
int gt_grid_init(gt_grid *g, int *argc, char ***argv, int tp, gt_err *err);
/* Creates NCCL communicators for the tp and dp groups on a CUDA stream (the backend's:
 * gt_ops.stream). A NULL stream (a CPU backend) leaves the groups on MPI. */
void gt_grid_use_nccl(gt_grid *g, void *cuda_stream);
void gt_grid_free(gt_grid *g);

#endif
