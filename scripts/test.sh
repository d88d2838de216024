#!/usr/bin/env bash
# The README's second command (and CI's): install, build, run every CPU test, then run the CPU
# tests again under AddressSanitizer and UndefinedBehaviorSanitizer, then (as root) the Slurm scripts
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
# The Slurm batch scripts on a real single-node Slurm (slurmctld, slurmd, munge on localhost), with a
# preemption notice, a checkpoint, a requeue and a resume: needs root to install and start them.
if [ "$(id -u)" = 0 ]; then
    bash tests/slurm/run-local-slurm.sh build/gemmatron
fi
