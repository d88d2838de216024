#define _POSIX_C_SOURCE 200809L
#include "plotter.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../core/fs.h"

extern char **environ;

#ifndef GT_SOURCE_DIR
#define GT_SOURCE_DIR "."
#endif

/* plot_metrics.py's exit status when h5py or matplotlib cannot be imported. */
#define PLOT_MISSING_DEPS 3

void gt_plotter_init(gt_plotter *p, const char *run_dir, int off) {
    memset(p, 0, sizeof *p);
    snprintf(p->run_dir, sizeof p->run_dir, "%s", run_dir);
    p->disabled = off;
}

static void warn(gt_plotter *p, const char *why) {
    fprintf(stderr, "gemmatron: warning: metrics.plot_every: %s; no plots for this run (training goes on)\n", why);
    fflush(stderr);
    p->disabled = 1;
}

/* What a child's exit status means for the next refreshes. */
static void judge(gt_plotter *p, int status) {
    char why[4300];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    if (WIFEXITED(status) && WEXITSTATUS(status) == PLOT_MISSING_DEPS)
        snprintf(why, sizeof why, "python3 lacks h5py or matplotlib (apt-get install python3-h5py python3-matplotlib)");
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        snprintf(why, sizeof why, "cannot run the Python interpreter");
    else
        snprintf(why, sizeof why, "scripts/plot_metrics.py failed (status %d; see %s/plots/plot_metrics.log)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), p->run_dir);
    warn(p, why);
}

/* Reaps the child if it has ended (wait: block until it does). Returns 1 while it still runs. */
static int reap(gt_plotter *p, int wait) {
    if (!p->pid) return 0;
    int status;
    pid_t r;
    while ((r = waitpid(p->pid, &status, wait ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r == 0) return 1;
    p->pid = 0;
    if (r > 0) judge(p, status);
    return 0;
}

static void spawn(gt_plotter *p) {
    char plots[4200], log[4300], metrics[4200], script[4200];
    const char *py = getenv("GEMMATRON_PYTHON"), *sc = getenv("GEMMATRON_PLOT_SCRIPT");
    gt_err e;
    if (!py || !*py) py = "python3";
    if (sc && *sc) snprintf(script, sizeof script, "%s", sc);
    else snprintf(script, sizeof script, "%s/scripts/plot_metrics.py", GT_SOURCE_DIR);
    if (gt_path_join(plots, sizeof plots, p->run_dir, "plots", &e) ||
        gt_path_join(metrics, sizeof metrics, p->run_dir, "metrics.h5", &e) || gt_mkdirs(plots, &e)) {
        warn(p, e.msg);
        return;
    }
    snprintf(log, sizeof log, "%s/plot_metrics.log", plots);
    char *argv[] = {(char *)py, script, metrics, (char *)"-o", plots, (char *)"--quiet", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* the child's output must not interleave with the progress lines */
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    /* a process group of its own: Ctrl-C at the terminal stops the training (which checkpoints, then
     * waits for this child), not the plotting halfway */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    int rc = posix_spawnp(&p->pid, py, &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        char why[4400];
        snprintf(why, sizeof why, "cannot run %s %s: %s", py, script, strerror(rc));
        p->pid = 0;
        warn(p, why);
    }
}

void gt_plotter_refresh(gt_plotter *p) {
    if (p->disabled || reap(p, 0) || p->disabled) return;
    spawn(p);
}

void gt_plotter_finish(gt_plotter *p) {
    reap(p, 1);
    if (p->disabled) return;
    spawn(p);
    reap(p, 1);
}

void gt_plotter_wait(gt_plotter *p) { reap(p, 1); }
