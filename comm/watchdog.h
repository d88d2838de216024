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
/* Only armed phases are watched (e.g. training steps, not checkpoint writes or compilation). */
void gt_watchdog_arm(gt_watchdog *wd, int armed);

#endif
