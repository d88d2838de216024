/* One training run per run directory: RUN_DIR/train.lock, locked (fcntl, exclusive) by world rank 0
 * of the job for as long as it runs. The kernel drops the lock when the process ends however it
 * ends, so a crashed run never leaves a stale lock; the file stays, holding the last holder's host
 * and pid. The other ranks of the job learn the outcome from rank 0, so only the job's own ranks
 * share the directory: another job's rank 0 fails to take the lock, and its whole job stops. */
#ifndef GT_RUN_LOCK_H
#define GT_RUN_LOCK_H

#include "../comm/grid.h"

#define GT_RUN_LOCK_FILE "train.lock"

typedef struct {
    int fd;            /* rank 0: the locked file; -1 elsewhere */
    int created;       /* rank 0: the run directory did not exist before */
    char dir[4096];
    char path[4200];   /* the lock file */
} gt_run_lock;

/* Collective over g's world: creates run_dir (mkdir -p) and takes its lock. When another process
 * holds it, fails on every rank with one line naming the holder's host and pid. */
int gt_run_lock_take(gt_run_lock *l, gt_grid *g, const char *run_dir, gt_err *err);
/* Releases the lock (closing the file); a no-op on the other ranks and when called twice. failed:
 * the run stopped before it wrote anything, so a run directory that the take created is removed
 * again when the lock file is all it holds (a bad config leaves no directory behind). */
void gt_run_lock_release(gt_run_lock *l, int failed);

#endif
