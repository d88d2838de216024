#!/usr/bin/env bash
# The README's first command: install, build, and run gemmatron's embedded default job end to end —
# fine-tune a tiny Gemma (configs/tiny-cpu.yaml: HF random init, byte-level vocabulary) on the
# bundled demo data on the CPU (about a minute), then score the model it wrote with `gemmatron eval`
# on the validation shard, and let it continue three prompts with `gemmatron generate` (sampled, seeded; byte
# vocabulary: text in, text out). Metrics go to runs/tiny-cpu/metrics.h5, and their plots (loss and eval
# loss, learning rate, throughput, gradient norm) to runs/tiny-cpu/plots/*.png, redrawn by train every
# 50 steps (metrics.plot_every) with matplotlib, which install-deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
# the plots are drawn by the Python that install-deps.sh installed h5py and matplotlib into
GEMMATRON_PYTHON=/usr/bin/python3 ./build/gemmatron train --config configs/tiny-cpu.yaml --run-dir runs/tiny-cpu \
    --set metrics.plot_every=50
./build/gemmatron eval --model runs/tiny-cpu/final --data data/demo/val.bin --seq-len 128 --device cpu
echo "The fine-tuned model continues three prompts (gemmatron generate, sampled with a fixed seed):"
for prompt in "The kettle" "A bicycle needs" "The river was"; do
    printf '  %s' "$prompt"
    ./build/gemmatron generate --model runs/tiny-cpu/final --prompt "$prompt" --max-new-tokens 60 \
        --temperature 0.8 --top-k 10 --seed 1 --device cpu 2>/dev/null
done
echo "Plots of the run (python3 scripts/plot_metrics.py RUN_DIR redraws them; give several runs to compare):"
for png in runs/tiny-cpu/plots/*.png; do
    [ -s "$png" ] || { echo "demo: no plots in runs/tiny-cpu/plots" >&2; exit 1; }
    echo "  $png"
done
