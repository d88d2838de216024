#!/usr/bin/env bash
# `gemmatron eval` under mpirun: tp=2, dp=2 and tp=2 x dp=2 print the single-process loss; layouts
# that cannot work are refused at start with the reason and the tp values that would. $1 = build dir.
set -u
bin="$1/gemmatron"
mpi="mpirun --oversubscribe --allow-run-as-root"
args="--model tests/fixtures/mqa --data data/demo/tokens.txt --seq-len 8 --device cpu"
fail=0
check() { # name, condition
    if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
want=$("$bin" eval $args 2>/dev/null | tail -1)
for layout in "-np 2 --tp 2" "-np 2 --tp 1" "-np 4 --tp 2" "-np 4 --tp 4"; do
    np=${layout% --tp*}
    tp=${layout#*--tp }
    got=$($mpi $np "$bin" eval $args --tp "$tp" 2>/dev/null | tail -1)
    check "eval $layout: '$got' == '$want'" '[ -n "$want" ] && [ "$got" = "$want" ]'
done
err=$($mpi -np 2 "$bin" eval $args --tp 3 2>&1)
check "tp=3 on 2 ranks refused" 'grep -q "does not divide the 2 processes" <<<"$err"'
err=$($mpi -np 8 "$bin" eval $args --tp 8 2>&1)
check "tp=8 with 4 heads refused, naming tp values that work" \
    'grep -q "num_attention_heads is not divisible by tp (tp values that work: 1, 2, 4)" <<<"$err"'
echo "mpi_eval: $((6 - fail)) passed, $fail failed"
exit $fail
