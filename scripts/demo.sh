#!/usr/bin/env bash
# The README's first command: install, build, and run gemmatron's embedded default job end to end —
# fine-tune a tiny Gemma (configs/tiny-cpu.yaml: HF random init, byte-level vocabulary) on the
# bundled demo data on the CPU (about a minute), then score the model it wrote with `gemmatron eval`
# on the validation shard, and let it continue three prompts with `gemmatron generate` (sampled, seeded; byte
# vocabulary: text in, text out). Metrics go to runs/tiny-cpu/metrics.h5 (and a PNG when matplotlib is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/gemmatron train --config configs/tiny-cpu.yaml --run-dir runs/tiny-cpu
./build/gemmatron eval --model runs/tiny-cpu/final --data data/demo/val.bin --seq-len 128 --device cpu
echo "The fine-tuned model continues three prompts (gemmatron generate, sampled with a fixed seed):"
for prompt in "The kettle" "A bicycle needs" "The river was"; do
    printf '  %s' "$prompt"
    ./build/gemmatron generate --model runs/tiny-cpu/final --prompt "$prompt" --max-new-tokens 60 \
        --temperature 0.8 --top-k 10 --seed 1 --device cpu 2>/dev/null
done
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 scripts/plot_metrics.py runs/tiny-cpu/metrics.h5
fi
