#!/usr/bin/env bash
# On a machine with 2+ GPUs: the tensor-parallel test (tp=2 against tp=1) and the 2-GPU benchmark:
# Gemma-2B at tp=2 (per-GPU throughput, to divide by the one-GPU figure of bench_gpu.sh on the same
# GPU type), Gemma-2B at dp=2 (the overlapped gradient all-reduce), Gemma-7B shapes at tp=2 in BF16,
# FP8 and FP8 with the lm_head (one micro-batch per step, with the share of step time in NCCL and its
# bus bandwidth; then ACCUM micro-batches per optimizer step, default 16 as
# configs/gemma-7b-tp2.yaml accumulates). Builds build-gpu if needed. TP1=1 also times Gemma-2B on
# one GPU here; TEST=0, B2=0, B7=0, OVERLAP=0 leave out the test, the Gemma-2B runs, the
# one-micro-batch Gemma-7B runs, the tp-overlap comparison.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NCCL_NVLS_ENABLE=0
[ -d .gpu-deps ] && bash .gpu-deps/install.sh >/dev/null
cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C build-gpu -j"$(nproc)" gemmatron test_gpu_tp 2>&1 | grep -E "error"
mpi="mpirun -np 2 --allow-run-as-root -x NCCL_NVLS_ENABLE=0"
b=build-gpu/gemmatron
keep="step_ms|communication|matmul|attention|optimizer|fp8 cast|profiled|rank"
nvidia-smi --query-gpu=name --format=csv,noheader
accum=${ACCUM:-16}
if [ "${TEST:-1}" = 1 ]; then
    echo "=== test_gpu_tp"
    timeout 300 $mpi build-gpu/tests/gpu/test_gpu_tp
fi
if [ "${TP1:-0}" = 1 ]; then
    echo "=== gemma-2b tp=1 (one GPU)"
    $b bench --model configs/hf/gemma-2b --batch 2 --seq 2048 --steps 6 --warmup 2 | grep step_ms
fi
if [ "${B2:-1}" = 1 ]; then
    echo "=== gemma-2b tp=2"
    $mpi $b bench --model configs/hf/gemma-2b --batch 2 --seq 2048 --steps 6 --warmup 2 --tp 2 --profile | grep -E "$keep"
    echo "=== gemma-2b dp=2 (tp=1)"
    $mpi $b bench --model configs/hf/gemma-2b --batch 2 --seq 2048 --steps 6 --warmup 2 --tp 1 | grep -E "step_ms|rank"
fi
if [ "${B7:-1}" = 1 ]; then
    for mode in "" --fp8 --fp8-lm-head; do
        echo "=== gemma-7b tp=2 ${mode:-BF16}"
        $mpi $b bench --model configs/hf/gemma-7b --batch 2 --seq 2048 --steps 5 --warmup 2 --tp 2 --profile $mode |
            grep -E "$keep"
    done
fi
# The backward's tp sums beside the wgrad GEMMs (parallel.tp_overlap) against synchronous ones:
# the losses must agree to the last digit, the step times show what the overlap buys.
if [ "${OVERLAP:-1}" = 1 ]; then
    for mode in "" --fp8-lm-head; do
        for ov in "" --no-tp-overlap; do
            echo "=== gemma-7b tp=2 ${mode:-BF16} ${ov:-(tp overlap)}"
            $mpi $b bench --model configs/hf/gemma-7b --batch 2 --seq 2048 --steps 5 --warmup 2 --tp 2 $mode $ov |
                grep -E "step_ms|rank"
        done
    done
fi
# configs/gemma-7b-tp2.yaml accumulates micro-batches: the optimizer step is then amortized
for mode in "" --fp8 --fp8-lm-head; do
    echo "=== gemma-7b tp=2 ${mode:-BF16}, $accum micro-batches per step"
    $mpi $b bench --model configs/hf/gemma-7b --batch 2 --seq 2048 --steps 3 --warmup 1 --tp 2 --accum $accum $mode |
        grep -E "step_ms|rank"
done
