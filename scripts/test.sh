#!/usr/bin/env bash
# The README's second command (and CI's): install, build, run every CPU test, then run the CPU
# tests again under AddressSanitizer and UndefinedBehaviorSanitizer, then the fuzzers (tests/fuzz, with
# clang), then (as root) the Slurm scripts
# on a real single-node Slurm. CUDA sources are compiled
# whenever nvcc exists; GPU tests run on a GPU machine with tests/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DGT_SANITIZE=ON
cmake --build build-sanitize -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-sanitize --output-on-failure -j"$jobs"
# The file readers under libFuzzer (tests/fuzz: safetensors header, index JSON, config.json, YAML run
# config, token shard header), each for FUZZ_SECONDS (45) on seeds from the fixtures, failing on any
# crash, sanitizer report, leak, hang or memory blow-up: a separate clang build (GT_FUZZ), so only
# where clang and its libFuzzer runtime are installed.
if command -v clang >/dev/null && echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' |
    clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGT_FUZZ=ON -DBUILD_TESTING=OFF
    cmake --build build-fuzz -j"$jobs" --target fuzz_safetensors fuzz_index fuzz_config fuzz_run_config fuzz_shard
    bash tests/fuzz/run.sh build-fuzz
else
    echo "test.sh: clang with libFuzzer not found: the fuzzers are skipped (scripts/install-deps.sh installs them)"
fi
# The Slurm batch scripts on a real single-node Slurm (slurmctld, slurmd, munge on localhost), with a
# preemption notice, a checkpoint, a requeue and a resume: needs root to install and start them.
if [ "$(id -u)" = 0 ]; then
    bash tests/slurm/run-local-slurm.sh build/gemmatron
fi
