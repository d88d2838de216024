/* A job whose rank 1 fails (argv[1] = "kill": SIGKILLs itself; "hang": stops calling collectives
 * and sleeps) while every rank all-reduces in a loop, as in a training step. Used by
 * test_mpi_fault.sh: every rank must exit within a bounded time, with a message naming the rank
 * and the collective it was in. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../comm/grid.h"

int main(int argc, char **argv) {
    gt_grid g;
    gt_err err;
    GT_ASSERT(argc > 1, "usage: mpi_fault_rank kill|hang");
    const char *mode = argv[1];
    GT_ASSERT(!gt_grid_init(&g, &argc, &argv, 2, &err), "%s", err.msg);
    gt_watchdog_arm(g.wd, 1);
    float buf[64] = {0};
    for (int it = 0; it < 1000000; it++) {
        if (g.world_rank == 1 && it == 50) {
            if (!strcmp(mode, "kill")) raise(SIGKILL);
            for (;;) sleep(1);
        }
        gt_allreduce(&g.tp_group, buf, 64, GT_F32, GT_RED_SUM);
    }
    gt_grid_free(&g);
    return 0;
}
