/* NCCL collectives on the CUDA backend's stream. */
#include "nccl_ops.h"

#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "watchdog.h"

#define NCCL_CHECK(call)                                                                           \
    do {                                                                                           \
        ncclResult_t r_ = (call);                                                                  \
        if (r_ != ncclSuccess) gt_die(__FILE__, __LINE__, "%s: %s", #call, ncclGetErrorString(r_)); \
    } while (0)

static ncclDataType_t nccl_type(gt_dtype t) {
    switch (t) {
    case GT_F32: return ncclFloat32;
    case GT_F64: return ncclFloat64;
    case GT_BF16: return ncclBfloat16;
    case GT_F16: return ncclFloat16;
    case GT_I32: return ncclInt32;
    case GT_I64: return ncclInt64;
    default: GT_DIE("NCCL collectives on %s buffers are not supported", gt_dtype_name(t));
    }
}

static ncclRedOp_t nccl_op(gt_red op) { return op == GT_RED_MAX ? ncclMax : ncclSum; }

/* Watchdog hooks (watchdog.h), on its thread: NCCL documents ncclCommGetAsyncError and ncclCommAbort
 * as callable while another thread uses the communicator. An error NCCL found asynchronously (a
 * peer gone, a network failure) ends the process instead of leaving the stream waiting for ever. */
static int nccl_poll(void *ctx, char *msg, size_t len) {
    gt_group *g = ctx;
    ncclResult_t async = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError((ncclComm_t)g->nccl, &async);
    if (r != ncclSuccess) {
        snprintf(msg, len, "%s:%d: ncclCommGetAsyncError on the %s group: %s", __FILE__, __LINE__, g->name,
                 ncclGetErrorString(r));
        return 1;
    }
    if (async == ncclSuccess || async == ncclInProgress) return 0;
    snprintf(msg, len, "NCCL reported an asynchronous error on the %s group: %s", g->name, ncclGetErrorString(async));
    return 1;
}

static void nccl_abort(void *ctx) {
    gt_group *g = ctx;
    ncclResult_t r = ncclCommAbort((ncclComm_t)g->nccl);
    if (r != ncclSuccess)
        fprintf(stderr, "gemmatron: %s:%d: ncclCommAbort on the %s group: %s\n", __FILE__, __LINE__, g->name,
                ncclGetErrorString(r));
}

void gt_nccl_group_init(gt_group *g, void *stream) {
    ncclUniqueId id;
    if (g->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, g->mpi));
    ncclComm_t comm;
    NCCL_CHECK(ncclCommInitRank(&comm, g->size, id, g->rank));
    g->nccl = comm;
    g->stream = stream;
    gt_watchdog_add_hook(g->wd, nccl_poll, nccl_abort, g);
}

void gt_nccl_group_free(gt_group *g) {
    if (!g->nccl) return;
    gt_watchdog_remove_hook(g->wd, g);
    NCCL_CHECK(ncclCommDestroy((ncclComm_t)g->nccl));
    g->nccl = NULL;
}

void gt_nccl_sync(gt_group *g) {
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)g->stream);
    if (e != cudaSuccess) GT_DIE("cudaStreamSynchronize: %s", cudaGetErrorString(e));
}

void gt_nccl_allreduce(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op) {
    NCCL_CHECK(ncclAllReduce(buf, buf, n, nccl_type(t), nccl_op(op), (ncclComm_t)g->nccl,
                             (cudaStream_t)g->stream));
}

void gt_nccl_allgather(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t) {
    NCCL_CHECK(ncclAllGather(send, recv, n, nccl_type(t), (ncclComm_t)g->nccl, (cudaStream_t)g->stream));
}

void gt_nccl_reduce_scatter(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t, gt_red op) {
    NCCL_CHECK(ncclReduceScatter(send, recv, n, nccl_type(t), nccl_op(op), (ncclComm_t)g->nccl,
                                 (cudaStream_t)g->stream));
}

void gt_nccl_broadcast(gt_group *g, void *buf, size_t n, gt_dtype t, int root) {
    NCCL_CHECK(ncclBroadcast(buf, buf, n, nccl_type(t), root, (ncclComm_t)g->nccl, (cudaStream_t)g->stream));
}

#define CUDA_OK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) gt_die(__FILE__, __LINE__, "%s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)

/* events[0]: compute -> comm (the buffer is ready); events[1]: comm -> compute (reduced).
 * Returns the communication stream, made to wait for the work queued so far on the group's stream. */
static cudaStream_t comm_stream_after_compute(gt_group *g) {
    if (!g->comm_stream) {
        cudaStream_t s;
        cudaEvent_t *ev = gt_calloc(2, sizeof *ev);
        CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        CUDA_OK(cudaEventCreateWithFlags(&ev[0], cudaEventDisableTiming));
        CUDA_OK(cudaEventCreateWithFlags(&ev[1], cudaEventDisableTiming));
        g->comm_stream = s;
        g->comm_events = ev;
    }
    cudaEvent_t *ev = g->comm_events;
    CUDA_OK(cudaEventRecord(ev[0], (cudaStream_t)g->stream));
    CUDA_OK(cudaStreamWaitEvent((cudaStream_t)g->comm_stream, ev[0], 0));
    return (cudaStream_t)g->comm_stream;
}

void gt_nccl_allreduce_start(gt_group *g, void *buf, size_t n, gt_dtype t) {
    cudaStream_t s = comm_stream_after_compute(g);
    NCCL_CHECK(ncclAllReduce(buf, buf, n, nccl_type(t), ncclSum, (ncclComm_t)g->nccl, s));
}

/* One in-place ncclReduce per owner of a part of [off, off + n), grouped so that they run at once
 * (together they move what a reduce-scatter of the range would). */
void gt_nccl_reduce_owners_start(gt_group *g, void *buf, size_t off, size_t n, size_t block, gt_dtype t) {
    cudaStream_t s = comm_stream_after_compute(g);
    size_t es = gt_dtype_size(t);
    NCCL_CHECK(ncclGroupStart());
    for (size_t a = off, end = off + n; a < end;) {
        int root = (int)(a / block);
        size_t b = (size_t)(root + 1) * block < end ? (size_t)(root + 1) * block : end;
        char *p = (char *)buf + a * es;
        NCCL_CHECK(ncclReduce(p, p, b - a, nccl_type(t), ncclSum, root, (ncclComm_t)g->nccl, s));
        a = b;
    }
    NCCL_CHECK(ncclGroupEnd());
}

void gt_nccl_wait(gt_group *g) {
    if (!g->comm_stream) return;
    cudaEvent_t *ev = g->comm_events;
    CUDA_OK(cudaEventRecord(ev[1], (cudaStream_t)g->comm_stream));
    CUDA_OK(cudaStreamWaitEvent((cudaStream_t)g->stream, ev[1], 0));
}

void gt_nccl_release_stream(gt_group *g) {
    if (!g->comm_stream) return;
    cudaEvent_t *ev = g->comm_events;
    CUDA_OK(cudaStreamSynchronize((cudaStream_t)g->comm_stream));
    CUDA_OK(cudaEventDestroy(ev[0]));
    CUDA_OK(cudaEventDestroy(ev[1]));
    CUDA_OK(cudaStreamDestroy((cudaStream_t)g->comm_stream));
    free(ev);
    g->comm_stream = g->comm_events = NULL;
}
