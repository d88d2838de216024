#!/usr/bin/env bash
# A real Slurm on this machine (slurmctld + slurmd + munge on localhost), for the batch scripts of
# scripts/slurm/: not part of ctest (it installs Debian's slurm-wlm and munge and starts daemons as
# root). Run as root from the repository root after a build:
#   bash tests/slurm/run-local-slurm.sh [build/gemmatron]
# The job runs scripts/slurm/train-1node.sbatch on the CPU (1 task, no GPU) with a 1-minute time
# limit and --signal=B:USR1@45: Slurm signals the batch shell, gemmatron checkpoints and exits 75,
# the script requeues the job, and the requeued job resumes from the checkpoint and finishes. Two
# more jobs get SIGTERM while training (to the job step, to the batch shell): gemmatron checkpoints
# and the job's exit code is 75. Prints "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/gemmatron}")
work=$(mktemp -d /tmp/gt-slurm-XXXXXX)
fail=0
check() { # name, condition
    if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
cleanup() {
    [ -n "${ctld:-}" ] && kill "$ctld" 2>/dev/null
    [ -n "${slurmd_pid:-}" ] && kill "$slurmd_pid" 2>/dev/null
    [ -n "${munged_pid:-}" ] && kill "$munged_pid" 2>/dev/null
}
trap cleanup EXIT
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null || { echo "cannot install slurm-wlm and munge"; exit 1; }
fi

# munge: its own key and socket under $work
mkdir -p "$work/munge" && chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1 count=1024 2>/dev/null && chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/sock" --pid-file="$work/munge/pid" \
    --log-file="$work/munge/log" --seed-file="$work/munge/seed"
munged_pid=$(cat "$work/munge/pid")

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$work/state" "$work/spool"
cat >"$work/slurm.conf" <<CONF
ClusterName=gtlocal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=10 State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$work/slurmctld.out" 2>&1 &
ctld=$!
slurmd -D -f "$SLURM_CONF" >"$work/slurmd.out" 2>&1 &
slurmd_pid=$!
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed" && break; sleep 1; done
check "local Slurm is up ($(sinfo -h -o '%N %T' 2>&1 | head -1))" 'sinfo -h -o %T | grep -qE "idle|mixed"'

run="$work/run"
out="$work/job.out"
jobid=$(sbatch --parsable --nodes=1 --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=1 --time=1 \
    --signal=B:USR1@45 --output="$out" --export=ALL,GEMMATRON="$bin",SRUN_MPI=${SRUN_MPI:-pmix},GT_MAX_REQUEUES=1 \
    scripts/slurm/train-1node.sbatch configs/tiny-cpu.yaml "$run" --set data.seq_len=64 \
    --set data.micro_batch=2 --set train.eval_every=0 --set train.log_every=50 --set train.save_final=false \
    --set train.steps=100000000 --set optim.warmup_steps=2 --set device=cpu 2>&1)
check "sbatch accepted the job ($jobid)" '[[ "$jobid" =~ ^[0-9]+$ ]]'
# first run: USR1 ~15 s in, checkpoint, exit 75, requeue; second run: the same again, no requeue
for _ in $(seq 400); do
    state=$(sacct -n -X -j "$jobid" -o State 2>/dev/null | head -1 | tr -d ' ')
    squeue -h -j "$jobid" 2>/dev/null | grep -q . || break
    sleep 1
done
log=$(cat "$out" 2>/dev/null)
stops=$(grep -c "^stopped by signal 10 after step" <<<"$log")
check "the time-limit notice (USR1) stopped the run after a checkpoint: $stops time(s)" '[ "$stops" -ge 1 ]'
check "the job was requeued by the script" 'grep -q "requeueing job $jobid" <<<"$log"'
check "the requeued job resumed from the checkpoint" 'grep -q "resumed from $run/checkpoint-" <<<"$log"'
check "the requeued run stopped again and was not requeued past GT_MAX_REQUEUES" \
    'grep -q "not requeued (restart 1 of at most 1)" <<<"$log"'

# SIGTERM while training, no time-limit notice, GT_MAX_REQUEUES=0 (so the 75 is the job's exit
# code): `scancel -s TERM` signals the job step's tasks (srun passes nothing: the ranks get it from
# slurmstepd), `scancel -b -s TERM` the batch shell, which passes it on as USR1. Not tested:
# `scancel --full`, which also signals srun itself: srun answers SIGTERM with SIGKILL to every
# task ("forcing job termination"), so no checkpoint can be written (Slurm's behaviour).
term_job() { # name, scancel options
    local name=$1 opts=$2 o="$work/$1.out"
    local j
    j=$(sbatch --parsable --nodes=1 --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=1 --time=5 \
        --output="$o" --export=ALL,GEMMATRON="$bin",SRUN_MPI=${SRUN_MPI:-pmix},GT_MAX_REQUEUES=0 \
        scripts/slurm/train-1node.sbatch configs/tiny-cpu.yaml "$work/run-$name" --set data.seq_len=64 \
        --set data.micro_batch=2 --set train.eval_every=0 --set train.log_every=1 --set train.save_final=false \
        --set train.steps=100000000 --set optim.warmup_steps=2 --set device=cpu 2>&1)
    for _ in $(seq 120); do grep -q "^step 3/" "$o" 2>/dev/null && break; sleep 1; done
    scancel $opts -s TERM "$j"
    for _ in $(seq 120); do squeue -h -j "$j" 2>/dev/null | grep -q . || break; sleep 1; done
    code=$(scontrol show job "$j" 2>/dev/null | grep -o ' ExitCode=[0-9:]*' | cut -d= -f2)
    local before=$fail
    check "scancel ${opts:+$opts }-s TERM while training: checkpoint, job exit code 75 (ExitCode=$code)" \
        'grep -q "^stopped by signal .* after step" "$o" && [ "${code%%:*}" = 75 ]'
    [ $fail = $before ] || { echo "--- $name output"; grep -v "^step" "$o" | tail -12; }
}
term_job steps ""
term_job batch -b
if [ $fail -gt 0 ]; then
    echo "--- job output"; tail -40 "$out"
    echo "--- slurmctld.log"; tail -20 "$work/slurmctld.log"
fi
echo "slurm_local: $((8 - fail)) passed, $fail failed"
exit $fail
