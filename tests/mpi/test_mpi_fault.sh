#!/usr/bin/env bash
# A rank that dies or hangs must end the whole job within a bounded time, with a message naming the
# rank and (for a hang, from the surviving rank's watchdog) the collective it was in. $1 = build dir.
set -u
bin="$1/tests/mpi_fault_rank"
fail=0
run() { # mode, limit (s), pattern...
    local mode=$1 limit=$2
    shift 2
    local start=$SECONDS
    local out
    out=$(GT_COMM_TIMEOUT=3 timeout 120 mpirun -np 2 --oversubscribe --allow-run-as-root "$bin" "$mode" 2>&1)
    local rc=$? took=$((SECONDS - start))
    local ok=1
    [ $rc -ne 0 ] && [ $rc -ne 124 ] || ok=0
    [ $took -le "$limit" ] || ok=0
    for p in "$@"; do grep -qE "$p" <<<"$out" || ok=0; done
    if [ $ok = 1 ]; then
        echo "ok   $mode: job ended in ${took}s (exit $rc)"
    else
        echo "FAIL $mode: exit $rc after ${took}s; output:"; echo "$out" | head -30
        fail=$((fail + 1))
    fi
}
run kill 60 "rank 1"
run hang 60 "gemmatron: rank 0: .*stuck in all-reduce\(sum\) on the tp group"
echo "mpi_fault: $((2 - fail)) passed, $fail failed"
exit $fail
