/* metrics.plot_every: rank 0 of `train` redraws the PNG files of RUN_DIR/plots while the run goes on, by running
 * scripts/plot_metrics.py as a child process ($GEMMATRON_PYTHON, default python3; the script is the
 * source tree's, or $GEMMATRON_PLOT_SCRIPT). Training never waits for it: a refresh that comes
 * while the previous one still runs is skipped, and finished children are reaped at every refresh
 * (no zombies); the child runs in a process group of its own, so a Ctrl-C at the terminal reaches
 * only the training (which stops after its step, checkpoints and waits for the child). At the end of the run one last refresh is run and waited for, so the plots show every
 * step. When the interpreter, h5py or matplotlib is missing, or the script fails, one warning line
 * is printed and plotting stops for the run; it never fails the run. The script's output goes to
 * RUN_DIR/plots/plot_metrics.log. */
#ifndef GT_PLOTTER_H
#define GT_PLOTTER_H

#include <sys/types.h>

typedef struct {
    char run_dir[4096];
    pid_t pid;    /* the running child, 0: none */
    int disabled; /* warned once: no more refreshes */
} gt_plotter;

/* off: plotting disabled from the start (metrics.plot_every 0, or not rank 0). */
void gt_plotter_init(gt_plotter *p, const char *run_dir, int off);
/* Starts a refresh unless one is running (never blocks). */
void gt_plotter_refresh(gt_plotter *p);
/* Waits for a running refresh, then runs a last one and waits for it. */
void gt_plotter_finish(gt_plotter *p);
/* Waits for a running refresh only (a run that stops early or fails). */
void gt_plotter_wait(gt_plotter *p);

#endif
