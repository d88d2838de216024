#!/usr/bin/env bash
# `gemmatron train` under mpirun on the CPU, tiny model and demo data: with the same global batch,
# dp=2 (2 sequences per rank) follows the single-process run (4 sequences) step for step, because
# rank r reads slots r, r+2, ... of the same shuffled order and the loss is the mean over the
# global batch; tp=2 trains (loss falls) and writes one metrics.h5 from rank 0. $1 = build dir.
set -u
bin="$1/gemmatron"
mpi="mpirun --oversubscribe --allow-run-as-root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common="--config configs/tiny-cpu.yaml --set train.steps=8 --set optim.warmup_steps=2 --set data.grad_accum=1
        --set train.save_final=false --set train.log_every=1"
fail=0
check() { # name, condition
    if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
losses() { grep -o '^step [0-9]*/8 | loss [0-9.]*' "$1" | awk '{print $5}'; }
"$bin" train $common --run-dir "$tmp/one" --set data.micro_batch=4 >"$tmp/one.log" 2>&1
$mpi -np 2 "$bin" train $common --run-dir "$tmp/dp2" --set data.micro_batch=2 >"$tmp/dp2.log" 2>&1
$mpi -np 2 "$bin" train $common --run-dir "$tmp/tp2" --set data.micro_batch=4 --set parallel.tp=2 >"$tmp/tp2.log" 2>&1
one=$(losses "$tmp/one.log" | tr '\n' ' ')
dp2=$(losses "$tmp/dp2.log" | tr '\n' ' ')
tp2=$(losses "$tmp/tp2.log" | tr '\n' ' ')
check "single process: 8 steps ($one)" '[ "$(wc -w <<<"$one")" = 8 ]'
check "dp=2 losses equal the single-process ones ($dp2)" '[ "$dp2" = "$one" ]'
check "dp=2 prints one progress line per step (rank 0 only)" '[ "$(grep -c "^step " "$tmp/dp2.log")" = 8 ]'
check "tp=2 loss falls ($tp2)" 'awk "BEGIN{exit !($(cut -d" " -f8 <<<"$tp2") < $(cut -d" " -f1 <<<"$tp2") - 1)}"'
check "tp=2 metrics.h5 and config.yaml written once" '[ -f "$tmp/tp2/metrics.h5" ] && [ -f "$tmp/tp2/config.yaml" ]'
err=$($mpi -np 2 "$bin" train $common --run-dir "$tmp/bad" --set parallel.tp=3 2>&1)
check "tp=3 on 2 ranks refused naming parallel.tp" 'grep -q "parallel.tp: .*does not divide the 2 processes" <<<"$err"'
echo "mpi_train: $((6 - fail)) passed, $fail failed"
exit $fail
