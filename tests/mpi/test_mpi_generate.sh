#!/usr/bin/env bash
# `gemmatron generate` under mpirun: tp=2 (and tp=4) print the single-process tokens, greedy and
# seeded sampling, on a batch of prompts of unequal length: GQA (tp=2: each rank its KV head; tp=4:
# replicas) and MQA (the one KV head replicated on every rank). The same with --fp8 from each
# fixture calibrated by `gemmatron calibrate` (gqa with the lm_head in FP8, vocab-parallel; mqa
# without): every rank reads the whole state and runs its slices' GEMMs with the same per-tensor
# scales. $1 = build dir.
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
# random in-vocabulary calibration tokens as a token shard (data/shard.h)
/usr/bin/python3 scripts/random_shard.py --out "$tmp/cal.bin" --count 400 --vocab 160
for fx in gqa:true mqa:false; do
    name=${fx%%:*}
    "$bin" calibrate --model "tests/fixtures/$name" --data "$tmp/cal.bin" --out "$tmp/$name-fp8" --steps 2 \
        --seq-len 32 --device cpu --set fp8.history_len=4 --set "fp8.lm_head=${fx#*:}" >/dev/null 2>&1
    for mode in "" "--temperature 0.9 --top-k 20 --seed 5"; do
        args="--model $tmp/$name-fp8 --fp8 --prompts $tmp/p.jsonl --max-new-tokens 12 --device cpu --jsonl $mode"
        want=$("$bin" generate $args 2>/dev/null)
        got=$($mpi -np 2 "$bin" generate $args --tp 2 2>/dev/null)
        check "$name --fp8 tp=2 ${mode:-greedy}: same tokens as tp=1" '[ -n "$want" ] && [ "$got" = "$want" ]'
    done
done
echo "mpi_generate: $((n - fail)) passed, $fail failed"
exit $fail
