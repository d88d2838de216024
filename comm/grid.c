#include "grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef GT_HAVE_NCCL
#include "nccl_ops.h"
#endif

static void make_group(gt_group *grp, const char *name, MPI_Comm comm, gt_watchdog *wd) {
    memset(grp, 0, sizeof *grp);
    grp->name = name;
    grp->mpi = comm;
    grp->wd = wd;
    MPI_CHECK(MPI_Comm_rank(comm, &grp->rank));
    MPI_CHECK(MPI_Comm_size(comm, &grp->size));
}

static double comm_timeout(void) {
    const char *v = getenv("GT_COMM_TIMEOUT");
    return v && *v ? atof(v) : 600.0;
}

/* A process started by mpirun, srun or another PMI launcher (or one that already called MPI_Init)
 * joins MPI; a plain `gemmatron ...` runs as a one-process grid without touching MPI. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK",
                                       "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    int started = 0;
    MPI_Initialized(&started);
    return started;
}

static void single_group(gt_group *grp, const char *name) {
    memset(grp, 0, sizeof *grp);
    grp->name = name;
    grp->mpi = MPI_COMM_NULL;
    grp->size = 1;
}

static int single_process(gt_grid *g, int tp, gt_err *err) {
    if (tp != 1) return gt_fail(err, "--tp %d needs %d processes: launch with mpirun -np %d (or srun)", tp, tp, tp);
    g->world_size = g->local_size = g->tp = g->dp = 1;
    single_group(&g->world, "world");
    single_group(&g->tp_group, "tp");
    single_group(&g->dp_group, "dp");
    return 0;
}

int gt_grid_init(gt_grid *g, int *argc, char ***argv, int tp, gt_err *err) {
    memset(g, 0, sizeof *g);
    if (!launched_by_mpi()) return single_process(g, tp, err);
    int started;
    MPI_CHECK(MPI_Initialized(&started));
    if (!started) {
        int provided;
        MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
        g->owns_mpi = 1;
    }
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g->world_rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g->world_size));
    if (tp < 1 || g->world_size % tp) {
        gt_fail(err, "--tp %d does not divide the %d processes of this job (world = dp x tp)", tp,
                g->world_size);
        if (g->owns_mpi) MPI_Finalize();
        g->owns_mpi = 0;
        return -1;
    }
    MPI_Comm local;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g->world_rank, MPI_INFO_NULL, &local));
    MPI_CHECK(MPI_Comm_rank(local, &g->local_rank));
    MPI_CHECK(MPI_Comm_size(local, &g->local_size));
    MPI_CHECK(MPI_Comm_free(&local));
    g->tp = tp;
    g->dp = g->world_size / tp;
    g->tp_rank = g->world_rank % tp;
    g->dp_rank = g->world_rank / tp;
    g->wd = gt_watchdog_start(g->world_size > 1 ? comm_timeout() : 0, g->world_rank);
    MPI_Comm tpc, dpc, world;
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, g->dp_rank, g->tp_rank, &tpc));
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, g->tp_rank, g->dp_rank, &dpc));
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &world));
    make_group(&g->world, "world", world, g->wd);
    make_group(&g->tp_group, "tp", tpc, g->wd);
    make_group(&g->dp_group, "dp", dpc, g->wd);
    return 0;
}

void gt_grid_use_nccl(gt_grid *g, void *cuda_stream) {
    if (!cuda_stream) return;
#ifdef GT_HAVE_NCCL
    if (g->tp > 1) gt_nccl_group_init(&g->tp_group, cuda_stream);
    if (g->dp > 1) gt_nccl_group_init(&g->dp_group, cuda_stream);
    /* the FP8 amax MAX reduction spans tp x dp: device buffers need NCCL on the world group too */
    if (g->world_size > 1) gt_nccl_group_init(&g->world, cuda_stream);
#else
    GT_ASSERT(g->world_size == 1, "this gemmatron was built without NCCL: multi-GPU runs need it");
#endif
}

void gt_grid_free(gt_grid *g) {
    gt_group_release(&g->tp_group);
    gt_group_release(&g->dp_group);
    gt_group_release(&g->world);
#ifdef GT_HAVE_NCCL
    gt_nccl_group_free(&g->tp_group);
    gt_nccl_group_free(&g->dp_group);
    gt_nccl_group_free(&g->world);
#endif
    gt_group *groups[] = {&g->world, &g->tp_group, &g->dp_group};
    for (int i = 0; i < 3; i++)
        if (groups[i]->mpi != MPI_COMM_NULL) MPI_Comm_free(&groups[i]->mpi);
    gt_watchdog_stop(g->wd);
    g->wd = NULL;
    if (g->owns_mpi) MPI_Finalize();
    g->owns_mpi = 0;
}
