#!/usr/bin/env bash
# Generation throughput on one GPU, gemmatron against HF transformers on the same GPU (never in CI):
#   bash scripts/bench_generate.sh [BUILD_DIR]      (default build-gpu, as tests/gpu/run.sh builds)
# Gemma-2B's config with HF's random initialization, BF16: prompts of 128 tokens, 256 new tokens
# (--ignore-eos: exactly 256), at batch 1 and 64, with and without CUDA graphs; time to first token
# for a 2,048-token prompt; then scripts/bench_hf_generate.py (model.generate, greedy, sdpa) at the
# same shapes. One "gemmatron generate: bench: ..." or "hf generate ..." line per run, at batch 1
# and 64 the op classes of one decode step (generate --profile, in the run without graphs), and where ncu is installed the
# kernels of a batch-1 step (scripts/ncu_kernels.py).
# FP8 (generate --fp8): the same random-init Gemma-2B written as an HF directory by
# scripts/gpu_make_hf_init.py (torch and transformers, as bench_hf_generate.py needs), calibrated by
# `gemmatron calibrate` on 4 sequences of 2,048 of 16,384 random token ids (a synthetic shard: random weights
# have no real data to prefer), then batch 1 and 64 at the BF16 runs' shapes, with CUDA graphs.
# Targets (issue 16): batch-1 decode >= 75% of the HBM limit (~958 tokens/s on an H200 for 5 GB of
# weights); batch 64 >= 5x HF's tokens/s.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build-gpu}/gemmatron
cfg=configs/hf/gemma-2b
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prompts() { # count, length -> JSONL of random ids
    /usr/bin/python3 -c "
import json, random, sys
r = random.Random(1)
for _ in range(int(sys.argv[1])):
    print(json.dumps({'ids': [2] + [r.randrange(3, 256000) for _ in range(int(sys.argv[2]) - 1)]}))" "$1" "$2"
}
for B in 1 64; do
    prompts "$B" 128 >"$tmp/p$B.jsonl"
    echo "=== gemmatron batch $B prompt 128 new 256 CUDA graphs"
    "$bin" generate --model "$cfg" --random-init --device cuda --prompts "$tmp/p$B.jsonl" --batch-size "$B" \
        --max-new-tokens 256 --ignore-eos --bench --jsonl 2>&1 >/dev/null | grep "bench:"
    # without graphs, then where the decode step's time goes, op class by op class (--profile: after
    # the timed steps, so it does not change them)
    echo "=== gemmatron batch $B prompt 128 new 256 --no-cuda-graphs"
    "$bin" generate --model "$cfg" --random-init --device cuda --prompts "$tmp/p$B.jsonl" --batch-size "$B" \
        --max-new-tokens 256 --ignore-eos --bench --profile --jsonl --no-cuda-graphs 2>&1 >/dev/null |
        grep -v "^gemmatron generate: configs"
done
# and kernel by kernel: Nsight Compute over ~one decode step of batch 1, launched directly (the
# prefill of a 128-token prompt is ~300 launches, a step ~220: launches 1500.. are decode steps)
if command -v ncu >/dev/null; then
    echo "=== gemmatron batch 1 decode step, kernel by kernel (ncu)"
    ncu --launch-skip 1500 --launch-count 230 --csv --page raw --print-units base --log-file "$tmp/ncu.csv" \
        --metrics gpu__time_duration.sum,dram__bytes.sum,launch__grid_size,launch__block_size \
        "$bin" generate --model "$cfg" --random-init --device cuda --prompts "$tmp/p1.jsonl" --batch-size 1 \
        --max-new-tokens 40 --ignore-eos --jsonl --no-cuda-graphs >/dev/null 2>&1
    python3 scripts/ncu_kernels.py "$tmp/ncu.csv"
fi
prompts 1 2048 >"$tmp/long.jsonl"
echo "=== gemmatron time to first token, prompt 2048"
"$bin" generate --model "$cfg" --random-init --device cuda --prompts "$tmp/long.jsonl" --max-new-tokens 2 \
    --ignore-eos --bench --jsonl 2>&1 >/dev/null | grep "bench:"
echo "=== gemmatron FP8: calibrating a random-init Gemma-2B on synthetic tokens"
python3 scripts/gpu_make_hf_init.py --config "$cfg" --out "$tmp/hf-2b" >/dev/null
/usr/bin/python3 scripts/random_shard.py --out "$tmp/cal.bin" --count $((8 * 2048)) --vocab 256000 --seed 2
"$bin" calibrate --model "$tmp/hf-2b" --data "$tmp/cal.bin" --out "$tmp/hf-2b-fp8" --steps 4 --seq-len 2048 \
    --device cuda --set fp8.lm_head=true | tail -1
for B in 1 64; do
    echo "=== gemmatron FP8 batch $B prompt 128 new 256 CUDA graphs"
    "$bin" generate --model "$tmp/hf-2b-fp8" --fp8 --device cuda --prompts "$tmp/p$B.jsonl" --batch-size "$B" \
        --max-new-tokens 256 --ignore-eos --bench --jsonl 2>&1 >/dev/null | grep "bench:"
done
echo "=== HF transformers generate"
python3 scripts/bench_hf_generate.py --config "$cfg" --batch 1 64 --prompt 128 --new 256 --ttft-prompt 2048
