#!/usr/bin/env bash
# Side by side on one GPU: gemmatron's training step (BF16 and FP8) against HF transformers'
# GemmaForCausalLM (bf16 eager, torch.compile, and fp32-master + bf16 autocast, gemmatron's recipe),
# on Gemma-2B's config with random weights, B=2 T=2048; then 200 steps of BF16 and of FP8 on the
# same batch (final losses compared). Builds build-gpu if needed.
#   bash scripts/bench_gpu.sh [configs/hf/gemma-2b]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NCCL_NVLS_ENABLE=0
model=${1:-configs/hf/gemma-2b}
bin=build-gpu/gemmatron
[ -x "$bin" ] || { cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a >/dev/null && make -C build-gpu -j"$(nproc)" gemmatron >/dev/null; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
echo "=== gemmatron BF16"
$bin bench --model "$model" --batch 2 --seq 2048 --steps 10 --warmup 3 --profile
echo "=== gemmatron FP8"
$bin bench --model "$model" --batch 2 --seq 2048 --steps 10 --warmup 3 --fp8 --profile
echo "=== HF transformers"
for mode in eager compile autocast; do
    python3 scripts/bench_hf.py --config "$model/config.json" --mode "$mode" --batch 2 --seq 2048 \
        2>&1 | grep -E '^hf |Error' | tail -2
done
echo "=== longer sequences (B=1, T=8192)"
$bin bench --model "$model" --batch 1 --seq 8192 --steps 5 --warmup 2 | grep step_ms
python3 scripts/bench_hf.py --config "$model/config.json" --mode compile --batch 1 --seq 8192 --steps 5 \
    2>&1 | grep -E '^hf |Error' | tail -2
echo "=== 200 steps on one batch: BF16 vs FP8 final loss"
$bin bench --model "$model" --batch 2 --seq 2048 --steps 200 --warmup 0 | grep step_ms
$bin bench --model "$model" --batch 2 --seq 2048 --steps 200 --warmup 0 --fp8 | grep step_ms
