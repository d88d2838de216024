#!/usr/bin/env bash
# The communication watchdog in `train` under mpirun -np 2 (tp=2): a rank stopped with
# SIGSTOP (hung, not dead: its sockets stay open, so MPI itself never fails) must end the whole job
# within GT_COMM_TIMEOUT (plus start-up and kill slack), with one line from the surviving rank naming
# itself, the group and the collective it was stuck in. $1 = build dir.
set -u
bin="$1/gemmatron"
mpi="mpirun -np 2 --oversubscribe --allow-run-as-root"
tmp=$(mktemp -d)
stopped=""
trap '[ -n "$stopped" ] && kill -CONT $stopped 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0
check() { # name, condition
    if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
timeout_s=4
# The pid of world rank 1 among the children of the launcher $1.
rank1_of() {
    local p
    for p in $(ps -o pid= --ppid "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && { echo "$p"; return; }
    done
}
# hang NAME READY_PATTERN CMD...: starts the job, stops rank 1 once READY_PATTERN is in the log;
# sets rc, took (seconds from the stop to the end of the job) and log.
hang() {
    local name=$1 ready=$2
    shift 2
    log="$tmp/$name.log"
    GT_COMM_TIMEOUT=$timeout_s timeout $((timeout_s + 30)) $mpi "$@" >"$log" 2>&1 &
    local job=$! waited=0 launcher=""
    until grep -qE "$ready" "$log" || [ $waited -ge 600 ]; do sleep 0.1; waited=$((waited + 1)); done
    launcher=$(ps -o pid= --ppid $job | head -1 | tr -d ' ')
    stopped=$(rank1_of "$launcher")
    local t0=$SECONDS
    [ -n "$stopped" ] && kill -STOP "$stopped"
    wait $job
    rc=$?
    took=$((SECONDS - t0))
    stopped=""
}
limit=$((timeout_s + 20))
pattern="^gemmatron: rank 0: no collective has completed or started for [0-9]+ s: stuck in [a-z(), -]+ on the (tp|world) group"

hang train '^step 3/' "$bin" train --config configs/tiny-cpu.yaml --run-dir "$tmp/run" --set parallel.tp=2 \
    --set train.steps=100000 --set optim.warmup_steps=2 --set train.log_every=1 --set train.eval_every=0 \
    --set train.save_final=false --set data.seq_len=64 --set data.micro_batch=2 --set data.grad_accum=1
check "train: rank 1 stopped -> job ended in ${took}s (<= $limit), exit $rc (not 0, not the 124 of timeout)" \
    '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le $limit ]'
check "train: one line names rank 0, the group and the collective ($(grep -m1 -oE "$pattern" "$log"))" \
    '[ "$(grep -cE "$pattern" "$log")" = 1 ]'
[ $fail = 0 ] || tail -20 "$log"

echo "mpi_train_hang: $((2 - fail)) passed, $fail failed"
exit $fail
