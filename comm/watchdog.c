#include "watchdog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../core/base.h"
#include "../core/clock.h"

#define GT_WD_HOOKS 8
/* Seconds the abort hooks may take before SIGALRM ends the process anyway. */
#define GT_WD_ABORT_S 10

typedef struct {
    gt_watchdog_poll_fn poll;
    gt_watchdog_abort_fn abort;
    void *ctx;
} hook;

struct gt_watchdog {
    pthread_mutex_t mu;
    pthread_t thread;
    int running, stop, armed, inside, rank, nhooks;
    double timeout, last_progress;
    char what[160];
    hook hooks[GT_WD_HOOKS];
};

/* Called with wd->mu held: aborts the communicators, then ends the process (exit 1); the launcher
 * then ends the other ranks. */
static void end_process(gt_watchdog *wd) {
    if (wd->nhooks) alarm(GT_WD_ABORT_S);
    for (int i = 0; i < wd->nhooks; i++)
        if (wd->hooks[i].abort) wd->hooks[i].abort(wd->hooks[i].ctx);
    _exit(1);
}

/* Prints what this rank was doing and ends the process. */
static void fire(gt_watchdog *wd, double idle) {
    fprintf(stderr, "gemmatron: rank %d: no collective has completed or started for %.0f s: %s %s; "
            "a peer rank has likely died or hung (timeout: GT_COMM_TIMEOUT)\n",
            wd->rank, idle, wd->inside ? "stuck in" : "last issued", wd->what);
    fflush(stderr);
    end_process(wd);
}

/* Called with wd->mu held: the first hook that reports a failure ends the process. */
static void poll_hooks(gt_watchdog *wd) {
    for (int i = 0; i < wd->nhooks; i++) {
        char msg[256] = "";
        if (!wd->hooks[i].poll || !wd->hooks[i].poll(wd->hooks[i].ctx, msg, sizeof msg)) continue;
        fprintf(stderr, "gemmatron: rank %d: %s; %s %s\n", wd->rank, msg, wd->inside ? "in" : "last issued",
                wd->what);
        fflush(stderr);
        end_process(wd);
    }
}

static void *watch(void *arg) {
    gt_watchdog *wd = arg;
    double period = wd->timeout / 20 < 1.0 ? wd->timeout / 20 : 1.0;
    struct timespec nap = {(time_t)period, (long)((period - (double)(time_t)period) * 1e9)};
    for (;;) {
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&wd->mu);
        if (wd->stop) break;
        double idle = gt_now() - wd->last_progress;
        if (wd->armed && idle > wd->timeout) fire(wd, idle);
        poll_hooks(wd);
        pthread_mutex_unlock(&wd->mu);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

gt_watchdog *gt_watchdog_start(double timeout_s, int world_rank) {
    gt_watchdog *wd = gt_calloc(1, sizeof *wd);
    pthread_mutex_init(&wd->mu, NULL);
    wd->rank = world_rank;
    wd->timeout = timeout_s;
    wd->last_progress = gt_now();
    snprintf(wd->what, sizeof wd->what, "(no collective yet)");
    if (timeout_s > 0) {
        GT_ASSERT(pthread_create(&wd->thread, NULL, watch, wd) == 0, "pthread_create failed");
        wd->running = 1;
    }
    return wd;
}

void gt_watchdog_stop(gt_watchdog *wd) {
    if (!wd) return;
    if (wd->running) {
        pthread_mutex_lock(&wd->mu);
        wd->stop = 1;
        pthread_mutex_unlock(&wd->mu);
        pthread_join(wd->thread, NULL);
    }
    pthread_mutex_destroy(&wd->mu);
    free(wd);
}

void gt_watchdog_enter(gt_watchdog *wd, const char *group, const char *what, size_t count, long seq) {
    if (!wd) return;
    pthread_mutex_lock(&wd->mu);
    snprintf(wd->what, sizeof wd->what, "%s on the %s group (%zu elements, collective #%ld)", what,
             group, count, seq);
    wd->inside = 1;
    wd->last_progress = gt_now();
    pthread_mutex_unlock(&wd->mu);
}

void gt_watchdog_leave(gt_watchdog *wd) {
    if (!wd) return;
    pthread_mutex_lock(&wd->mu);
    wd->inside = 0;
    wd->last_progress = gt_now();
    pthread_mutex_unlock(&wd->mu);
}

int gt_watchdog_arm(gt_watchdog *wd, int armed) {
    if (!wd) return 0;
    pthread_mutex_lock(&wd->mu);
    int was = wd->armed;
    wd->armed = armed;
    wd->last_progress = gt_now();
    pthread_mutex_unlock(&wd->mu);
    return was;
}

void gt_watchdog_add_hook(gt_watchdog *wd, gt_watchdog_poll_fn poll, gt_watchdog_abort_fn abort, void *ctx) {
    if (!wd) return;
    pthread_mutex_lock(&wd->mu);
    GT_ASSERT(wd->nhooks < GT_WD_HOOKS, "watchdog: more than %d hooks", GT_WD_HOOKS);
    wd->hooks[wd->nhooks++] = (hook){poll, abort, ctx};
    pthread_mutex_unlock(&wd->mu);
}

void gt_watchdog_remove_hook(gt_watchdog *wd, void *ctx) {
    if (!wd) return;
    pthread_mutex_lock(&wd->mu);
    for (int i = 0; i < wd->nhooks; i++)
        if (wd->hooks[i].ctx == ctx) {
            wd->hooks[i] = wd->hooks[--wd->nhooks];
            i--;
        }
    pthread_mutex_unlock(&wd->mu);
}
