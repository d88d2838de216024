#include "group.h"

#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "watchdog.h"
#ifdef GT_HAVE_NCCL
#include "nccl_ops.h"
#endif

static MPI_Datatype mpi_type(gt_dtype t) {
    switch (t) {
    case GT_F32: return MPI_FLOAT;
    case GT_F64: return MPI_DOUBLE;
    case GT_I32: return MPI_INT32_T;
    case GT_I64: return MPI_INT64_T;
    default: GT_DIE("MPI collectives on %s buffers are not supported (CPU backend is float/double)", gt_dtype_name(t));
    }
}

static MPI_Op mpi_op(gt_red op) { return op == GT_RED_MAX ? MPI_MAX : MPI_SUM; }

static int too_big(size_t n) { return n > (size_t)0x7fffffff; }

/* For timed groups: waits for queued device work, so that the collective's own time is measured. */
static double timing_start(gt_group *g) {
    if (!g->timed) return 0;
#ifdef GT_HAVE_NCCL
    if (g->nccl) gt_nccl_sync(g);
#endif
    return gt_now();
}

static void timing_stop(gt_group *g, double t0, double bus_bytes) {
    if (!g->timed) return;
    g->bus_bytes += bus_bytes;
#ifdef GT_HAVE_NCCL
    if (g->nccl) gt_nccl_sync(g);
#endif
    g->seconds += gt_now() - t0;
}

static void allreduce_impl(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op) {
    if (g->size == 1 || n == 0) return;
    gt_watchdog_enter(g->wd, g->name, op == GT_RED_MAX ? "all-reduce(max)" : "all-reduce(sum)", n, ++g->calls);
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_allreduce(g, buf, n, t, op);
        return;
    }
#endif
    GT_ASSERT(!too_big(n), "all-reduce of %zu elements exceeds MPI's count", n);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), mpi_op(op), g->mpi));
    gt_watchdog_leave(g->wd);
}

static void allgather_impl(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t) {
    if (g->mpi == MPI_COMM_NULL) { /* one-process grid: host memory only */
        memmove(recv, send, n * gt_dtype_size(t));
        return;
    }
    gt_watchdog_enter(g->wd, g->name, "all-gather", n, ++g->calls);
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_allgather(g, send, recv, n, t);
        return;
    }
#endif
    GT_ASSERT(!too_big(n), "all-gather of %zu elements exceeds MPI's count", n);
    /* in place: this rank's block already sits at its place in recv */
    int in_place = (const char *)send == (const char *)recv + (size_t)g->rank * n * gt_dtype_size(t);
    MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : send, (int)n, mpi_type(t), recv, (int)n, mpi_type(t), g->mpi));
    gt_watchdog_leave(g->wd);
}

static void reduce_scatter_impl(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t, gt_red op) {
    if (g->mpi == MPI_COMM_NULL) { /* one-process grid: host memory only */
        memmove(recv, send, n * gt_dtype_size(t));
        return;
    }
    gt_watchdog_enter(g->wd, g->name, "reduce-scatter", n, ++g->calls);
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_reduce_scatter(g, send, recv, n, t, op);
        return;
    }
#endif
    GT_ASSERT(!too_big(n), "reduce-scatter of %zu elements exceeds MPI's count", n);
    size_t es = gt_dtype_size(t);
    if ((const char *)recv == (const char *)send + (size_t)g->rank * n * es) {
        /* in place (recv is this rank's block of send, as NCCL allows): MPI puts the result at the
         * start of the buffer, whose other blocks are consumed anyway */
        MPI_CHECK(MPI_Reduce_scatter_block(MPI_IN_PLACE, (void *)send, (int)n, mpi_type(t), mpi_op(op), g->mpi));
        memmove(recv, send, n * es);
    } else {
        MPI_CHECK(MPI_Reduce_scatter_block(send, recv, (int)n, mpi_type(t), mpi_op(op), g->mpi));
    }
    gt_watchdog_leave(g->wd);
}

static void broadcast_impl(gt_group *g, void *buf, size_t n, gt_dtype t, int root) {
    if (g->size == 1 || n == 0) return;
    gt_watchdog_enter(g->wd, g->name, "broadcast", n, ++g->calls);
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_broadcast(g, buf, n, t, root);
        return;
    }
#endif
    GT_ASSERT(!too_big(n), "broadcast of %zu elements exceeds MPI's count", n);
    MPI_CHECK(MPI_Bcast(buf, (int)n, mpi_type(t), root, g->mpi));
    gt_watchdog_leave(g->wd);
}

void gt_allreduce_host(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op) {
    if (g->size == 1 || n == 0) return;
    gt_watchdog_enter(g->wd, g->name, "host all-reduce", n, ++g->calls);
    GT_ASSERT(!too_big(n), "all-reduce of %zu elements exceeds MPI's count", n);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), mpi_op(op), g->mpi));
    gt_watchdog_leave(g->wd);
}

void gt_allreduce(gt_group *g, void *buf, size_t n, gt_dtype t, gt_red op) {
    double t0 = timing_start(g);
    allreduce_impl(g, buf, n, t, op);
    timing_stop(g, t0, 2.0 * (g->size - 1) / g->size * (double)(n * gt_dtype_size(t)));
}

void gt_allgather(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t) {
    double t0 = timing_start(g);
    allgather_impl(g, send, recv, n, t);
    timing_stop(g, t0, (double)(g->size - 1) * (double)(n * gt_dtype_size(t)));
}

void gt_reduce_scatter(gt_group *g, const void *send, void *recv, size_t n, gt_dtype t, gt_red op) {
    double t0 = timing_start(g);
    reduce_scatter_impl(g, send, recv, n, t, op);
    timing_stop(g, t0, (double)(g->size - 1) * (double)(n * gt_dtype_size(t)));
}

void gt_broadcast(gt_group *g, void *buf, size_t n, gt_dtype t, int root) {
    double t0 = timing_start(g);
    broadcast_impl(g, buf, n, t, root);
    timing_stop(g, t0, (double)(n * gt_dtype_size(t)));
}

static MPI_Request *new_request(gt_group *g) {
    if (g->npending == g->cap_pending) {
        g->cap_pending = g->cap_pending ? 2 * g->cap_pending : 64;
        MPI_Request *r = realloc(g->pending, (size_t)g->cap_pending * sizeof *r);
        if (!r) GT_DIE("out of host memory");
        g->pending = r;
    }
    return &g->pending[g->npending++];
}

void gt_allreduce_start(gt_group *g, void *buf, size_t n, gt_dtype t) {
    if (g->size == 1 || n == 0) return;
    gt_watchdog_enter(g->wd, g->name, "all-reduce(sum), overlapped", n, ++g->calls);
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_allreduce_start(g, buf, n, t);
        return;
    }
#endif
    GT_ASSERT(!too_big(n), "all-reduce of %zu elements exceeds MPI's count", n);
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), MPI_SUM, g->mpi, new_request(g)));
}

void gt_reduce_owners_start(gt_group *g, void *buf, size_t off, size_t n, size_t block, gt_dtype t) {
    if (g->size == 1 || n == 0) return;
    GT_ASSERT(block > 0 && off + n <= block * (size_t)g->size, "elements [%zu, %zu) lie outside %d blocks of %zu",
              off, off + n, g->size, block);
    gt_watchdog_enter(g->wd, g->name, "reduce to owners, overlapped", n, ++g->calls);
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_reduce_owners_start(g, buf, off, n, block, t);
        return;
    }
#endif
    GT_ASSERT(!too_big(block), "reduce of %zu elements exceeds MPI's count", block);
    size_t es = gt_dtype_size(t);
    for (size_t a = off, end = off + n; a < end;) {
        int root = (int)(a / block);
        size_t b = (size_t)(root + 1) * block < end ? (size_t)(root + 1) * block : end;
        char *p = (char *)buf + a * es;
        int mine = root == g->rank; /* the receive buffer counts at the root only */
        MPI_CHECK(MPI_Ireduce(mine ? MPI_IN_PLACE : p, mine ? p : NULL, (int)(b - a), mpi_type(t), MPI_SUM, root,
                              g->mpi, new_request(g)));
        a = b;
    }
}

void gt_group_wait(gt_group *g) {
#ifdef GT_HAVE_NCCL
    if (g->nccl) {
        gt_nccl_wait(g);
        return;
    }
#endif
    if (!g->npending) return;
    MPI_CHECK(MPI_Waitall(g->npending, g->pending, MPI_STATUSES_IGNORE));
    g->npending = 0;
    gt_watchdog_leave(g->wd);
}

void gt_group_release(gt_group *g) {
#ifdef GT_HAVE_NCCL
    gt_nccl_release_stream(g);
#endif
    free(g->pending);
    g->pending = NULL;
    g->npending = g->cap_pending = 0;
}
