#!/usr/bin/env bash
# The Slurm batch scripts (scripts/slurm/*.sbatch) without Slurm: srun and scontrol are stand-ins
# (srun runs the command, scontrol records its arguments). A SIGUSR1 to the batch shell (what
# --signal=B:USR1@120 does) reaches gemmatron, which finishes its step, checkpoints and exits 75;
# the script requeues the job (scontrol requeue JOBID) and exits 75; the same script run again (the
# requeued job) resumes from the checkpoint and finishes without requeueing. The N-node script is
# run with LAUNCHER=mpirun (2 ranks, tp=2), whose mpirun passes the signal on to both ranks; a
# SIGTERM to that mpirun itself (as Slurm sends it to every process of the job) makes mpirun
# return 1 although both ranks checkpointed and exited 75: the script reads RUN_DIR/stopped, exits
# 75 and requeues.
# $1 = the gemmatron binary.
set -u
bin=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name, condition
    if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
mkdir "$tmp/fake"
cat >"$tmp/fake/srun" <<'SH'
#!/usr/bin/env bash
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
SH
cat >"$tmp/fake/scontrol" <<SH
#!/usr/bin/env bash
echo "\$*" >>"$tmp/scontrol.log"
SH
chmod +x "$tmp/fake/srun" "$tmp/fake/scontrol"
export PATH="$tmp/fake:$PATH" SLURM_SUBMIT_DIR="$PWD" SLURM_JOB_ID=4242 GEMMATRON="$bin"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
small=(--set data.seq_len=64 --set data.micro_batch=2 --set data.grad_accum=1 --set optim.warmup_steps=2
       --set train.eval_every=0 --set train.log_every=1 --set train.save_final=false)

# run_until_signal NAME SCRIPT RUN_DIR ARGS...: starts the batch script, sends it SIGUSR1 (SIG, and
# to its launcher child and the launcher's ranks when TO=launcher) once step 3 is printed, waits;
# sets rc and log.
run_until_signal() {
    local name=$1 script=$2 run=$3
    shift 3
    log="$tmp/$name.log"
    bash "$script" configs/tiny-cpu.yaml "$run" "${small[@]}" --set train.steps=100000 "$@" >"$log" 2>&1 &
    local pid=$! waited=0
    until grep -q '^step 3/' "$log" || [ $waited -ge 600 ]; do sleep 0.1; waited=$((waited + 1)); done
    local to=$pid
    [ "${TO:-}" = launcher ] && to=$(ps -o pid= --ppid $pid | head -1 | tr -d ' ')
    # TO=launcher: the launcher and its ranks, as Slurm signals every process of a job step
    [ "${TO:-}" = launcher ] && to="$to $(ps -o pid= --ppid "$to" | tr '\n' ' ')"
    echo "signal ${SIG:-USR1} to $to ($(ps -o comm= -p "${to%% *}"))" >>"$tmp/$name.signal"
    kill -"${SIG:-USR1}" $to
    wait $pid
    rc=$?
}

run_until_signal one scripts/slurm/train-1node.sbatch "$tmp/run1"
step=$(sed -n 's/^stopped by signal 10 after step \([0-9]*\).*/\1/p' "$log")
check "1 node: SIGUSR1 to the batch shell -> checkpoint after step $step, exit $rc (75)" \
    '[ "$rc" = 75 ] && [ -n "$step" ] && [ -d "$tmp/run1/checkpoint-$(printf %06d "$step")" ]'
check "1 node: the job is requeued (scontrol $(cat "$tmp/scontrol.log" 2>/dev/null))" \
    '[ "$(cat "$tmp/scontrol.log")" = "requeue 4242" ]'
SLURM_RESTART_COUNT=1 bash scripts/slurm/train-1node.sbatch configs/tiny-cpu.yaml "$tmp/run1" "${small[@]}" \
    --set train.steps=$((step + 2)) >"$tmp/again.log" 2>&1
rc=$?
check "1 node: the requeued job resumes from step $step and finishes (exit $rc), no second requeue" \
    '[ "$rc" = 0 ] && grep -q "resumed from $tmp/run1/checkpoint-" "$tmp/again.log" && [ "$(wc -l <"$tmp/scontrol.log")" = 1 ]'

# Open MPI's own allocations read as leaks to AddressSanitizer builds (as in tests/CMakeLists.txt).
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" SLURM_NTASKS=2 SLURM_NTASKS_PER_NODE=2 LAUNCHER=mpirun run_until_signal nodes scripts/slurm/train-nnodes.sbatch \
    "$tmp/run2" --set parallel.tp=2
step=$(sed -n 's/^stopped by signal 10 after step \([0-9]*\).*/\1/p' "$log")
check "N nodes (mpirun, tp=2): SIGUSR1 -> both ranks checkpoint after step $step, exit $rc (75), requeued" \
    '[ "$rc" = 75 ] && [ -n "$step" ] && [ -d "$tmp/run2/checkpoint-$(printf %06d "$step")" ] && [ "$(wc -l <"$tmp/scontrol.log")" = 2 ]'
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" SLURM_NTASKS=2 SLURM_NTASKS_PER_NODE=2 LAUNCHER=mpirun GT_STOP_GRACE=60 \
    SIG=TERM TO=launcher run_until_signal term scripts/slurm/train-nnodes.sbatch "$tmp/run3" --set parallel.tp=2
step=$(sed -n 's/^stopped by signal 15 after step \([0-9]*\).*/\1/p' "$log")
check "N nodes (mpirun, tp=2): SIGTERM to mpirun -> checkpoint after step $step, mpirun's status read as 75 ($rc), requeued" \
    '[ "$rc" = 75 ] && [ -n "$step" ] && grep -q "^the launcher exited 1, but every rank checkpointed" "$log" && [ "$(wc -l <"$tmp/scontrol.log")" = 3 ]'
[ "$rc" = 75 ] || { cat "$tmp/term.signal"; tail -15 "$log"; }
bash scripts/slurm/train-1node.sbatch >"$tmp/usage.log" 2>&1
rc=$?
check "usage without CONFIG RUN_DIR: exit $rc (2)" '[ "$rc" = 2 ] && grep -q usage "$tmp/usage.log"'
echo "slurm_scripts: $((6 - fail)) passed, $fail failed"
exit $fail
