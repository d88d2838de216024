/* Turns a hang into an error. Every collective records itself (group, kind, size, count) before it
 * starts; a thread checks that collectives keep starting. When none has started for `timeout`
 * seconds while the watchdog is armed, it prints which collective this rank was in or last issued,
 * and ends the process (the launcher then ends every rank). A rank that dies makes its peers stall
 * in their next collective, so every rank exits within about `timeout` seconds. */
#ifndef GT_WATCHDOG_H
#define GT_WATCHDOG_H

#include <stddef.h>

typedef struct gt_watchdog gt_watchdog;

/* timeout_s <= 0 disables the thread (the functions below then only record). */
gt_watchdog *gt_watchdog_start(double timeout_s, int world_rank);
void gt_watchdog_stop(gt_watchdog *wd);
/* Called at the start of every collective. */
void gt_watchdog_enter(gt_watchdog *wd, const char *group, const char *what, size_t count, long seq);
/* Called when a blocking collective has returned (MPI). */
void gt_watchdog_leave(gt_watchdog *wd);
/* Only armed phases are watched (e.g. training steps, not checkpoint writes or compilation).
 * Returns whether it was armed before, so that a phase can disarm it and restore it after. */
int gt_watchdog_arm(gt_watchdog *wd, int armed);

/* Asynchronous failures of a communication library (NCCL): while the thread runs (armed or not),
 * about once per check period it calls poll(ctx, msg, len) of every hook; a nonzero return ends the
 * process with msg and the collective this rank was in or last issued. Whenever the watchdog ends
 * the process (hang or poll), it first calls abort(ctx) of every hook (e.g. ncclCommAbort, so that
 * device work waiting on a dead peer stops), bounded by an alarm. Either function may be NULL. A
 * hook must be removed before what ctx points to goes away. */
typedef int (*gt_watchdog_poll_fn)(void *ctx, char *msg, size_t len);
typedef void (*gt_watchdog_abort_fn)(void *ctx);
void gt_watchdog_add_hook(gt_watchdog *wd, gt_watchdog_poll_fn poll, gt_watchdog_abort_fn abort, void *ctx);
void gt_watchdog_remove_hook(gt_watchdog *wd, void *ctx);

#endif
