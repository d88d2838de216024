#!/usr/bin/env bash
# Side by side on one GPU: gemmatron's training step against HF transformers' GemmaForCausalLM
# (bf16 eager, torch.compile, and fp32-master + bf16 autocast, gemmatron's recipe), on Gemma-2B's
# config with random weights. Assumes build-gpu/ holds a CUDA build (tests/gpu/run.sh makes it).
#   bash scripts/bench_gpu.sh [configs/hf/gemma-2b] [quick]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NCCL_NVLS_ENABLE=0
model=${1:-configs/hf/gemma-2b}
quick=${2:-}
bin=build-gpu/gemmatron
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "=== gemmatron"
$bin bench --model "$model" --batch 2 --seq 2048 --steps 10 --warmup 3 --profile
if [ -z "$quick" ]; then
    $bin bench --model "$model" --batch 1 --seq 8192 --steps 5 --warmup 2
fi
echo "=== HF transformers"
for mode in eager compile autocast; do
    python3 scripts/bench_hf.py --config "$model/config.json" --mode "$mode" --batch 2 --seq 2048 \
        2>&1 | grep -E '^hf |Error|error' | tail -3
done
if [ -z "$quick" ]; then
    python3 scripts/bench_hf.py --config "$model/config.json" --mode compile --batch 1 --seq 8192 --steps 5 \
        2>&1 | grep -E '^hf |Error' | tail -3
fi
