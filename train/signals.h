/* Stop requests from the outside: SIGTERM (Slurm preemption, `scancel`, a time limit, mpirun
 * passing on a kill) and SIGUSR1 (Slurm's --signal=B:USR1@T advance notice, forwarded to the ranks).
 * The handler only records the signal; the training loop looks at it between steps, finishes the
 * step, writes a checkpoint and exits with GT_EXIT_PREEMPTED, so that a batch script can requeue
 * the job and the next start resumes from that checkpoint. */
#ifndef GT_SIGNALS_H
#define GT_SIGNALS_H

/* The exit status after a stop request was honoured (checkpoint written): EX_TEMPFAIL of
 * sysexits.h, "temporary failure, try again". Distinct from 128 + signal, which a shell reports
 * for a process the signal killed before it could checkpoint. */
#define GT_EXIT_PREEMPTED 75

/* Installs the handler for SIGTERM and SIGUSR1 (SA_RESTART: system calls in progress resume). */
void gt_signals_install(void);
/* The signal received since install (SIGTERM or SIGUSR1; the first one wins), or 0. */
int gt_signals_pending(void);
/* Forgets a received signal (tests). */
void gt_signals_clear(void);

#endif
