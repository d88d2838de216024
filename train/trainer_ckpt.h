/* Checkpointing a training run (train/trainer.h) with train/ckpt/checkpoint.h, as the run config's
 * checkpoint.* keys say:
 *   - a checkpoint every checkpoint.every steps, after the last step, and after the step during
 *     which a stop signal (SIGTERM, SIGUSR1: train/signals.h) arrived on any rank;
 *   - on start, a resume from RUN_DIR's newest usable checkpoint when checkpoint.resume is set
 *     (or from the directory given to `gemmatron train --resume`): weights, optimizer state, step
 *     counters and the training data position, on any tp x dp layout.
 * All functions are collective over the grid's world. */
#ifndef GT_TRAINER_CKPT_H
#define GT_TRAINER_CKPT_H

#include "ckpt/checkpoint.h"
#include "trainer.h"

/* Writes RUN_DIR/checkpoint-<t->step>. */
int gt_trainer_checkpoint(gt_trainer *t, gt_err *err);

/* Restores checkpoint directory dir into a freshly built trainer. Refuses a checkpoint whose data
 * position cannot mean the same data here (another seq_len, shuffle or shuffle seed) or which is
 * past train.steps. */
int gt_trainer_resume(gt_trainer *t, const char *dir, gt_err *err);

/* The resume at start: from `from` when not NULL (a checkpoint directory, or a run directory
 * whose newest usable checkpoint is taken; having none is an error), else from RUN_DIR's newest
 * when checkpoint.resume is set and there is one. A new run (nothing resumed) takes the FP8 state
 * model.path holds, if any (gt_trainer_fp8_from_model). Returns 0 (resumed or nothing to resume) or -1. */
int gt_trainer_start(gt_trainer *t, const char *from, gt_err *err);

/* After each step: writes the checkpoints due (see above). *stop is set when a stop signal was
 * received: the checkpoint is written and the run should end with GT_EXIT_PREEMPTED. */
int gt_trainer_after_step(gt_trainer *t, int *stop, gt_err *err);

/* RUN_DIR/stopped: written by world rank 0 once every rank has written the checkpoint after a stop
 * signal (just before they all exit 75), removed at the start of every run. For launchers whose own
 * exit status is not the ranks' (mpirun given SIGTERM returns 1): scripts/slurm/requeue.sh reads it
 * as "every rank checkpointed", status 75. Text: step, signal, checkpoint and world size lines. */
#define GT_STOPPED_FILE "stopped"
/* Removes RUN_DIR/stopped (rank 0, at start); missing is fine. */
int gt_trainer_clear_stopped(const char *run_dir, gt_err *err);

#endif
