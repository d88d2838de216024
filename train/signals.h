/* Stop requests from the outside: SIGTERM (Slurm preemption, `scancel`, a time limit, mpirun
 * passing on a kill), SIGUSR1 (Slurm's --signal=B:USR1@T advance notice, forwarded to the ranks),
 * SIGINT (Ctrl-C) and SIGHUP (the terminal went away). A second SIGINT ends the process at once,
 * without a checkpoint (killed by SIGINT, as if no handler were installed). SIGINT and SIGHUP that
 * were ignored when the process started (`nohup`, a shell's background job) stay ignored.
 * The handler only records the signal; the training loop looks at it between steps, finishes the
 * step, writes a checkpoint and exits with GT_EXIT_PREEMPTED, so that a batch script can requeue
 * the job and the next start resumes from that checkpoint. */
#ifndef GT_SIGNALS_H
#define GT_SIGNALS_H

/* The exit status after a stop request was honoured (checkpoint written): EX_TEMPFAIL of
 * sysexits.h, "temporary failure, try again". Distinct from 128 + signal, which a shell reports
 * for a process the signal killed before it could checkpoint. */
#define GT_EXIT_PREEMPTED 75

/* Installs the handler for SIGTERM, SIGUSR1, SIGINT and SIGHUP (SA_RESTART: system calls in
 * progress resume). */
void gt_signals_install(void);
/* The signal received since install (the first one wins), or 0. */
int gt_signals_pending(void);
/* Forgets a received signal (tests). */
void gt_signals_clear(void);

#endif
