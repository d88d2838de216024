#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR (a GT_FUZZ=ON build, default build-fuzz) for a bounded time
# on a seed corpus assembled from tests/fixtures, configs and data/demo plus the saved inputs of
# tests/fuzz/corpus/TARGET, and fails on any crash, sanitizer report, leak, timeout (one input over
# 10 s) or memory blow-up (over 2 GB). FUZZ_SECONDS (default 45) per target. A failing input is left
# in BUILD_DIR/fuzz-out/TARGET/ (crash-*, leak-*, timeout-*, oom-*): fix the reader, then copy the
# input to tests/fuzz/corpus/TARGET/ so that CTest replays it (test fuzz_replay_TARGET).
# Prints, per target, the executions per second and the total executions. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build-fuzz}")
seconds=${FUZZ_SECONDS:-45}
work=$build/fuzz-out
rm -rf "$work"
mkdir -p "$work"

seed() { # target, files...
    local t=$1
    shift
    mkdir -p "$work/$t/seeds" "$work/$t/corpus"
    for f in "$@"; do cp "$f" "$work/$t/seeds/$(echo "$f" | tr / _)"; done
    if [ -d "tests/fuzz/corpus/$t" ]; then cp tests/fuzz/corpus/"$t"/* "$work/$t/seeds/" 2>/dev/null || true; fi
}
seed safetensors tests/fixtures/sharded/model-0000?-of-00006.safetensors
seed index tests/fixtures/sharded/model.safetensors.index.json
seed config tests/fixtures/*/config.json configs/hf/*/config.json
seed run_config configs/*.yaml
# fuzz_shard's first byte picks the expected vocabulary (0xff: 259, the demo's): prefixed seeds.
mkdir -p "$work/shard/seeds" "$work/shard/corpus"
for f in data/demo/val.bin data/demo/tokens.txt; do
    { printf '\377'; cat "$f"; } >"$work/shard/seeds/$(basename "$f")"
    { printf '\000'; cat "$f"; } >"$work/shard/seeds/novocab-$(basename "$f")"
done
{ printf '\377'; head -c 200 data/demo/train.bin; } >"$work/shard/seeds/truncated.bin"
if [ -d tests/fuzz/corpus/shard ]; then cp tests/fuzz/corpus/shard/* "$work/shard/seeds/" 2>/dev/null || true; fi

fail=0
printf '%-12s %10s %14s %s\n' target exec/s executions result
for t in safetensors index config run_config shard; do
    log=$work/$t/log
    set +e
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/$t/" "$work/$t/corpus" "$work/$t/seeds" \
        >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
    result=ok
    if [ "$rc" != 0 ]; then
        result="FAILED (exit $rc): $(ls "$work/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | tr '\n' ' ' || true)"
        fail=1
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5 || true
    fi
    printf '%-12s %10s %14s %s\n' "$t" "${rate:-?}" "${execs:-?}" "$result"
done
exit "$fail"
