#!/usr/bin/env bash
# `gemmatron generate` under mpirun: tp=2 (and tp=4) print the single-process tokens, greedy and
# seeded sampling, on a batch of prompts of unequal length: GQA (tp=2: each rank its KV head; tp=4:
# replicas) and MQA (the one KV head replicated on every rank). $1 = build dir.
set -u
bin="$1/gemmatron"
mpi="mpirun --oversubscribe --allow-run-as-root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '{"ids": [2, 17, 40, 5, 9]}\n{"ids": [2, 33]}\n{"ids": [2, 7, 7, 100, 21, 140, 3, 12]}\n' >"$tmp/p.jsonl"
fail=0
n=0
check() { # name, condition
    n=$((n + 1))
    if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
for fx in gqa mqa; do
    for mode in "" "--temperature 0.9 --top-k 20 --seed 5"; do
        args="--model tests/fixtures/$fx --prompts $tmp/p.jsonl --max-new-tokens 12 --device cpu --jsonl $mode"
        want=$("$bin" generate $args 2>/dev/null)
        for np in 2 4; do
            got=$($mpi -np $np "$bin" generate $args --tp $np 2>/dev/null)
            check "$fx tp=$np ${mode:-greedy}: same tokens as tp=1" '[ -n "$want" ] && [ "$got" = "$want" ]'
        done
    done
done
echo "mpi_generate: $((n - fail)) passed, $fail failed"
exit $fail
