# Shared by the batch scripts of scripts/slurm/ (sourced, not run): runs the training command as a
# child, forwards a stop notice to it, and requeues the job when gemmatron stopped early after a
# checkpoint (exit 75, GT_EXIT_PREEMPTED). The requeued job runs the same command, and gemmatron
# resumes from RUN_DIR's newest complete checkpoint (checkpoint.resume, on by default).
#
#   --signal=B:USR1@120   Slurm sends USR1 to this batch shell 120 s before the time limit; it is
#                         passed on to srun / mpirun, which pass it on to every rank.
#   preemption, scancel   Slurm sends SIGTERM to every process of the job (the ranks included) and
#                         SIGKILL after KillWait / GraceTime: the ranks finish the step and checkpoint.
#   SIGTERM to mpirun  Open MPI's mpirun, given SIGTERM with its ranks (Slurm signals every process
#                      of the job), returns 1 whatever the ranks returned (and given SIGTERM alone it
#                      was seen not to pass it on to busy ranks, so stop a job with scancel). So
#                      a status other than 75 still counts as 75 when RUN_DIR/stopped exists: world
#                      rank 0 writes it once every rank has written the stop checkpoint, just before
#                      they all exit 75 (removed here before the start, and by gemmatron at start).
# GT_MAX_REQUEUES (default 20) bounds the requeues of one job (SLURM_RESTART_COUNT counts them).

gt_child=""
gt_forward() {
    [ -n "$gt_child" ] && kill -USR1 "$gt_child" 2>/dev/null
    return 0
}

# gt_run_requeue RUN_DIR CMD ARGS...: runs CMD (the training of RUN_DIR) in the background and
# returns its exit status, requeueing the job first when that status is 75.
gt_run_requeue() {
    local stopped="$1/stopped"
    shift
    rm -f "$stopped"
    trap gt_forward USR1 TERM
    "$@" &
    gt_child=$!
    # A trapped signal ends `wait` early: wait again until the child is really gone.
    while kill -0 "$gt_child" 2>/dev/null; do wait "$gt_child"; done
    wait "$gt_child"
    local rc=$?
    trap - USR1 TERM
    if [ "$rc" -ne 75 ] && [ "$rc" -ne 0 ] && [ -f "$stopped" ]; then
        echo "the launcher exited $rc, but every rank checkpointed after a stop signal ($(tr '\n' ' ' <"$stopped")): exit 75"
        rc=75
    fi
    if [ "$rc" -eq 75 ]; then
        local n=${SLURM_RESTART_COUNT:-0} max=${GT_MAX_REQUEUES:-20}
        if [ "$n" -lt "$max" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
            echo "gemmatron stopped after a checkpoint (exit 75): requeueing job $SLURM_JOB_ID (restart $((n + 1)))"
            scontrol requeue "$SLURM_JOB_ID"
        else
            echo "gemmatron stopped after a checkpoint (exit 75): not requeued (restart $n of at most $max)"
        fi
    fi
    return "$rc"
}
