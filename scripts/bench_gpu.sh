#!/usr/bin/env bash
# Side by side on one GPU: gemmatron's training step (BF16, FP8, FP8 with the lm_head too) against HF
# transformers' GemmaForCausalLM (bf16 eager, torch.compile, and fp32-master + bf16 autocast,
# gemmatron's recipe), on Gemma-2B's config with random weights, B=2 T=2048; then B=1 T=8192
# against HF compile. Builds build-gpu if needed. Sections: all (default), gemmatron, hf.
#   bash scripts/bench_gpu.sh [configs/hf/gemma-2b] [all|gemmatron|hf]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NCCL_NVLS_ENABLE=0
model=${1:-configs/hf/gemma-2b}
what=${2:-all}
bin=build-gpu/gemmatron
[ -x "$bin" ] || { cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a >/dev/null && make -C build-gpu -j"$(nproc)" gemmatron >/dev/null; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ "$what" != hf ]; then
    for mode in "" --fp8 --fp8-lm-head; do
        echo "=== gemmatron ${mode:-BF16}"
        $bin bench --model "$model" --batch 2 --seq 2048 --steps 10 --warmup 3 --profile $mode
    done
    echo "=== gemmatron, 8 micro-batches per optimizer step (BF16, FP8, FP8 with the lm_head)"
    for mode in "" --fp8 --fp8-lm-head; do
        $bin bench --model "$model" --batch 2 --seq 2048 --steps 3 --warmup 1 --accum 8 $mode | grep step_ms
    done
    echo "=== gemmatron B=1 T=8192 (BF16, FP8)"
    $bin bench --model "$model" --batch 1 --seq 8192 --steps 5 --warmup 2 | grep step_ms
    $bin bench --model "$model" --batch 1 --seq 8192 --steps 5 --warmup 2 --fp8 | grep step_ms
fi
if [ "$what" != gemmatron ]; then
    echo "=== HF transformers B=2 T=2048"
    for mode in eager compile autocast; do
        python3 scripts/bench_hf.py --config "$model/config.json" --mode "$mode" --batch 2 --seq 2048 \
            2>&1 | grep -E '^hf |Error' | tail -2
    done
    echo "=== HF transformers B=1 T=8192"
    python3 scripts/bench_hf.py --config "$model/config.json" --mode compile --batch 1 --seq 8192 --steps 5 \
        2>&1 | grep -E '^hf |Error' | tail -2
fi
