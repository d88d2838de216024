/* A communicating group of ranks (world, a tensor-parallel group, a data-parallel group) and its
 * collectives. Over NCCL on device buffers when the group has a NCCL communicator (CUDA backend),
 * over MPI on host buffers otherwise (CPU backend), so the same tensor-parallel code runs in CI.
 * A one-process grid (no launcher) has groups of size 1 without communicators: their collectives
 * do nothing (all-gather and reduce-scatter copy, on host memory only).
 * Every collective is registered with the grid's watchdog, which names the collective a rank was
 * in when the job stops making progress. */
#ifndef GT_GROUP_H
#define GT_GROUP_H

#include <mpi.h>

#include "../core/base.h"

typedef enum { GT_RED_SUM = 0, GT_RED_MAX } gt_red;

typedef struct gt_watchdog gt_watchdog;

typedef struct gt_group {
    const char *name;  /* "world", "tp", "dp" */
    MPI_Comm mpi;
    int rank, size;
    void *nccl;        /* ncclComm_t, or NULL: collectives run over MPI on host memory */
    void *stream;      /* cudaStream_t the NCCL collectives are queued on */
    gt_watchdog *wd;   /* may be NULL */
    long calls;        /* collectives issued, for messages */
    void *comm_stream; /* NCCL: the stream non-blocking all-reduces run on, made on first use */
    void *comm_events; /* NCCL: two cudaEvent_t ordering it against `stream` */
    MPI_Request *pending; /* MPI: non-blocking all-reduces not yet waited for */
    int npending, cap_pending;
    int timed;         /* when set, each collective runs synchronously and adds its time and */
    double seconds;    /* its bus bytes (NCCL's convention: all-reduce moves 2(n-1)/n of the */
    double bus_bytes;  /* buffer per rank, all-gather and reduce-scatter (n-1)/n) here */
} gt_group;

/* In place: buf[n] = reduction over the group's ranks. */
void gt_allreduce(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op);
/* recv[size * n] = the n elements of send from every rank, in rank order. In place when send is
 * recv + rank * n (this rank's block already in place). */
void gt_allgather(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t);
/* recv[n] = reduction of the rank's block of send[size * n] over the group. In place when recv is
 * send + rank * n (the other blocks of send are then left undefined). */
void gt_reduce_scatter(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t, gt_red op);
void gt_broadcast(gt_group *g, void *buf, size_t n, gt_dtype t, int root);
/* Non-blocking in-place sum of buf[n] over the group: it starts after the work queued so far and
 * overlaps what is queued after it; gt_group_wait makes later work wait for every started one.
 * NCCL: on the group's own stream, ordered by events; MPI: MPI_Iallreduce. buf must not be touched
 * until the wait. */
void gt_allreduce_start(gt_group *g, void *buf, size_t n, gt_dtype t);
void gt_group_wait(gt_group *g);
/* Non-blocking, ordered like gt_allreduce_start and waited for by gt_group_wait: of buf, seen as
 * `size` blocks of `block` elements with block r owned by rank r, the elements [off, off + n) are
 * summed over the group onto their owners only (in place; the other ranks' copies are left as they
 * were). A reduce-scatter of part of a buffer: the backward of a step with a sharded optimizer
 * (ZeRO-1) sends each finished layer's gradients to the ranks that own them. NCCL: one ncclReduce
 * per owner, grouped; MPI: MPI_Ireduce. */
void gt_reduce_owners_start(gt_group *g, void *buf, size_t off, size_t n, size_t block, gt_dtype t);
/* Releases the group's stream, events and request list (the communicators are the grid's). */
void gt_group_release(gt_group *g);

/* All-reduce of host memory over MPI, whatever the group's device collectives are (loss sums,
 * token counts, flags). */
void gt_allreduce_host(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op);

/* Checked MPI call: a failure names the call, file, line and rank. */
#define MPI_CHECK(call)                                                                            \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS) {                                                                  \
            char s_[MPI_MAX_ERROR_STRING];                                                         \
            int l_ = 0;                                                                            \
            MPI_Error_string(rc_, s_, &l_);                                                        \
            gt_die(__FILE__, __LINE__, "%s: %s", #call, s_);                                       \
        }                                                                                          \
    } while (0)

#endif
