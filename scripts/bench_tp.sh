#!/usr/bin/env bash
# On a machine with 2+ GPUs: the tensor-parallel test (tp=2 against tp=1) and the tp benchmark:
# Gemma-2B at tp=1 and tp=2 (per-GPU throughput ratio), Gemma-7B shapes at tp=2, with the share of
# step time in NCCL and its bus bandwidth. Builds build-gpu if needed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NCCL_NVLS_ENABLE=0
[ -d .gpu-deps ] && bash .gpu-deps/install.sh >/dev/null
cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C build-gpu -j"$(nproc)" gemmatron test_gpu_tp 2>&1 | grep -E "error" 
mpi="mpirun -np 2 --allow-run-as-root -x NCCL_NVLS_ENABLE=0"
nvidia-smi --query-gpu=name --format=csv,noheader
echo "=== test_gpu_tp"
$mpi build-gpu/tests/gpu/test_gpu_tp
echo "=== gemma-2b tp=1 (one GPU)"
build-gpu/gemmatron bench --model configs/hf/gemma-2b --batch 2 --seq 2048 --steps 6 --warmup 2 | grep step_ms
echo "=== gemma-2b tp=2"
$mpi build-gpu/gemmatron bench --model configs/hf/gemma-2b --batch 2 --seq 2048 --steps 6 --warmup 2 --tp 2 --profile |
    grep -E "step_ms|communication|matmul|attention|optimizer|profiled"
echo "=== gemma-7b tp=2"
$mpi build-gpu/gemmatron bench --model configs/hf/gemma-7b --batch 2 --seq 2048 --steps 5 --warmup 2 --tp 2 --profile |
    grep -E "step_ms|communication|matmul|attention|optimizer|profiled"
