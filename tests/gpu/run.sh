#!/usr/bin/env bash
# Builds and runs the GPU tests on a machine with an NVIDIA Hopper GPU (never in CI):
#   bash tests/gpu/run.sh [--ops-only]
# 1. installs the carried -dev packages (.gpu-deps/, see /work/shared/gpu/fetch-deps.sh) if present
# 2. builds in build-gpu with -DGT_CUDA_ARCH=90a (make -k: a broken unrelated target does not stop
#    the tests that did build)
# 3. test_ops_gpu (every op against the CPU oracle), compute-sanitizer memcheck of its small-shape
#    run and of whole small training steps (BF16, FP8), test_ops_gpu --bench, bench_gemm_gpu (FP8
#    GEMM plans against every cuBLASLt heuristic candidate and BF16)
# 4. unless --ops-only: every other tests/gpu/test_* executable and tests/gpu/test_*.sh script
#    (test_gpu_attention twice: cuDNN's attention where it runs, then GT_CUDNN_ATTENTION=0);
#    executables named test_gpu_tp* are multi-rank: run under mpirun -np 2 when the machine has 2 or
#    more GPUs, otherwise reported as SKIP
# Prints a summary table; exits non-zero if any step failed. Each step is limited to
# GT_GPU_STEP_TIMEOUT seconds (default 600).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export NCCL_NVLS_ENABLE=0 # never NVLink multicast on shared machines
limit=${GT_GPU_STEP_TIMEOUT:-600}
ops_only=0
[ "${1:-}" = "--ops-only" ] && ops_only=1

names=()
codes=()
secs=()
step() {
    local name=$1
    shift
    echo "=== $name: $*"
    local t0=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    names+=("$name")
    codes+=("$rc")
    secs+=($((SECONDS - t0)))
    echo "=== $name: exit $rc"
    return $rc
}

skip() {
    names+=("$1")
    codes+=(SKIP)
    secs+=(0)
    echo "=== $1: skipped ($2)"
}

# A test executable that failed to build is reported as missing (127), not silently skipped.
run_exe() {
    local name=$1
    shift
    if [ -x "build-gpu/tests/gpu/$name" ]; then
        step "$name" "build-gpu/tests/gpu/$name" "$@"
    else
        names+=("$name")
        codes+=(127)
        secs+=(0)
        echo "=== $name: not built"
    fi
}

[ -d .gpu-deps ] && step deps bash .gpu-deps/install.sh
# cudnn-frontend's headers carried in .gpu-deps/ (machines without a registry), else where
# scripts/install-deps.sh puts them.
fe_dir=""
[ -f .gpu-deps/cudnn-frontend/include/cudnn_frontend.h ] && fe_dir=$PWD/.gpu-deps/cudnn-frontend/include
step configure cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a -DCMAKE_BUILD_TYPE=Release \
    ${fe_dir:+-DGT_CUDNN_FRONTEND_DIR=$fe_dir}
step build make -C build-gpu -k -j16 --no-print-directory

run_exe test_ops_gpu
if [ -x build-gpu/tests/gpu/test_ops_gpu ]; then
    step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 \
        build-gpu/tests/gpu/test_ops_gpu --small
    step bench build-gpu/tests/gpu/test_ops_gpu --bench
fi
# FP8 GEMM plans against every cuBLASLt heuristic candidate and against BF16 (not a test: a table)
run_exe bench_gemm_gpu
# A whole small training step (forward, backward, gradient norm, AdamW), BF16 and FP8, under
# compute-sanitizer's memcheck.
if [ -x build-gpu/gemmatron ]; then
    step memcheck_step compute-sanitizer --tool memcheck --error-exitcode 1 \
        build-gpu/gemmatron bench --model tests/fixtures/gqa --batch 2 --seq 64 --steps 2 --warmup 0
    step memcheck_step_fp8 compute-sanitizer --tool memcheck --error-exitcode 1 \
        build-gpu/gemmatron bench --model tests/fixtures/gqa --batch 2 --seq 64 --steps 2 --warmup 0 --fp8
fi

if [ "$ops_only" = 0 ]; then
    ngpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    for exe in build-gpu/tests/gpu/test_*; do
        name=$(basename "$exe")
        [ -f "$exe" ] && [ -x "$exe" ] && [ "$name" != test_ops_gpu ] || continue
        case "$name" in
        test_gpu_tp*)
            if [ "$ngpus" -ge 2 ]; then
                step "$name" mpirun --allow-run-as-root -x NCCL_NVLS_ENABLE -np 2 "$exe"
            else
                skip "$name" "needs 2 GPUs, this machine has $ngpus"
            fi
            ;;
        *) run_exe "$name" ;;
        esac
    done
    # The built-in attention kernels, which run wherever cuDNN does not, against the same references.
    GT_CUDNN_ATTENTION=0 run_exe test_gpu_attention
    names[${#names[@]}-1]=test_gpu_attention_builtin
    for script in tests/gpu/test_*.sh; do
        [ -f "$script" ] && step "$(basename "$script")" bash "$script"
    done
fi

echo
echo "=== summary"
printf '%-28s %6s %6s  %s\n' step exit secs result
failed=0
for i in "${!names[@]}"; do
    result=PASS
    if [ "${codes[$i]}" = SKIP ]; then
        result=SKIP
    elif [ "${codes[$i]}" != 0 ]; then
        result=FAIL
        failed=1
    fi
    printf '%-28s %6s %6s  %s\n' "${names[$i]}" "${codes[$i]}" "${secs[$i]}" "$result"
done
exit $failed
