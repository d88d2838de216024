#!/usr/bin/env bash
# The README's first command: install, build, and run gemmatron on its embedded default — a tiny
# Gemma (bundled) scored on bundled tokens, on the GPU if there is one, else on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/gemmatron eval --model tests/fixtures/gqa --data data/demo/tokens.txt
