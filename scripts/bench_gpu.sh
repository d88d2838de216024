#!/usr/bin/env bash
# gemmatron against PyTorch at its best, side by side on one GPU in one run, ending in one table:
#   1. gemmatron bench on the model dir (default configs/hf/gemma-2b: Gemma-2B's config, random init):
#      BF16, FP8 (layers' GEMMs), FP8 with the lm_head, at B=2 T=2048 with 1 and with 8 micro-batches
#      per optimizer step (bench --accum 8), and BF16 / FP8 at B=1 T=8192; BF16 runs with --profile,
#      whose attention fwd/bwd TFLOP/s go into the attention table, as do test_ops_gpu --bench's (when
#      build-gpu/tests/gpu/test_ops_gpu is built) and those of a 2-layer model of Gemma-7B's config
#      (the same attention shapes as the 7B, which needs tp to fit on one GPU). Every gemmatron run
#      keeps the optimizer state and gradients of HF's baseline, pure bf16 (optim.state=bf16: bf16
#      weights and moments, no fp32 master; optim.grads=bf16; GT_OPT_STATE and GT_OPT_GRADS
#      override), and one more BF16 run at B=2 T=2048 keeps fp32 master weights, moments and
#      gradients (optim.state=fp32, optim.grads=fp32), the defaults of `train`
#   2. HF transformers GemmaForCausalLM (scripts/bench_hf.py): pure bf16, torch.compile, fused AdamW,
#      clip 1.0, at the same three settings (one process per shape; accum 1 and 8 share the compiled
#      model). HF_EXTRA=1 adds HF eager and fp32-master + bf16 autocast at B=2 T=2048.
#   3. PyTorch SDPA alone (scripts/bench_sdpa.py), cuDNN and flash backends forced, on Gemma-2B and
#      Gemma-7B attention shapes
# Sections: all (default), gemmatron, hf, sdpa. A section that fails or times out reads FAIL in the
# table; the others still run. Builds build-gpu when build-gpu/gemmatron is missing.
#   bash scripts/bench_gpu.sh [MODEL_DIR] [all|gemmatron|hf|sdpa]
# Environment: PYTHON (python3), GT_BIN (build-gpu/gemmatron), BENCH_LOG_DIR (runs/bench_gpu/DATE:
# every section's full output), HF_EXTRA (0), BENCH_TIMEOUT (seconds per gemmatron run, 300),
# GT_OPT_STATE (bf16), GT_OPT_GRADS (bf16).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
export NCCL_NVLS_ENABLE=0
model=${1:-configs/hf/gemma-2b}
what=${2:-all}
case $what in
all | gemmatron | hf | sdpa) ;;
*)
    echo "usage: bash scripts/bench_gpu.sh [MODEL_DIR] [all|gemmatron|hf|sdpa]" >&2
    exit 2
    ;;
esac
[ -f "$model/config.json" ] || {
    echo "bench_gpu: $model/config.json not found" >&2
    exit 2
}
py=${PYTHON:-python3}
bin=${GT_BIN:-build-gpu/gemmatron}
limit=${BENCH_TIMEOUT:-300}
logs=${BENCH_LOG_DIR:-runs/bench_gpu/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$logs"
res=$logs/results.txt # KEY value... lines; KEY FAIL reason for a run that gave no figure
: >"$res"
t_start=$SECONDS
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)
echo "bench_gpu: ${gpu:-no nvidia-smi}; model $model; sections $what; logs in $logs"
want() { [ "$what" = all ] || [ "$what" = "$1" ]; }

# run NAME TIMEOUT CMD...: the command's output to the console and to $logs/NAME.log
run() {
    local name=$1 t=$2
    shift 2
    echo "=== $name: $*"
    local t0=$SECONDS
    timeout "$t" "$@" 2>&1 | tee "$logs/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc, $((SECONDS - t0)) s$([ "$rc" = 124 ] && echo " (timed out after ${t}s)")"
    return "$rc"
}
fail() { echo "$1 FAIL $2" >>"$res"; }

# gemmatron bench's result line: step_ms=134.70 (min .. max ..) tokens_per_s=30413 (30413 per GPU) mfu=46.9% mem_in_use_gib=52.50 loss=..
parse_gt() {
    awk '/step_ms=/ && /tokens_per_s=/ {
        for (i = 1; i <= NF; i++) { n = index($i, "="); if (!n) continue
            k = substr($i, 1, n - 1); v = substr($i, n + 1)
            if (k == "step_ms") s = v; else if (k == "tokens_per_s") t = v; else if (k == "mem_in_use_gib") m = v }
    } END { if (s != "" && t != "") print s, t, (m == "" ? "-" : m) }' "$1"
}
# bench --profile's rows: "attention fwd   18   3.60  2.4%   170 TFLOP/s   1.11" (fields 6 and 7)
parse_prof_attn() {
    awk '$1 == "attention" && $7 == "TFLOP/s" { if ($2 == "fwd") f = $6; else if ($2 == "bwd") b = $6 }
         END { if (f != "" && b != "") print f, b }' "$1"
}
# test_ops_gpu --bench's rows: "attention_fwd  B=2 T=2048 Hq=8 Hkv=1 D=256  ms GB/s TFLOP/s %roof"
parse_ops_attn() {
    awk '$1 == "attention_fwd" { f = $(NF - 1) } $1 == "attention_bwd" { b = $(NF - 1) }
         END { if (f != "" && b != "") print f, b }' "$1"
}

# gt KEY LOGNAME ARGS...: one gemmatron bench run; records "KEY step_ms tokens_per_s mem" (and
# "attn:KEY fwd bwd" when profiled)
gt() {
    local key=$1 name=$2
    shift 2
    run "$name" "$limit" "$bin" bench "$@"
    local rc=$? r
    r=$(parse_gt "$logs/$name.log")
    if [ -n "$r" ]; then echo "$key $r" >>"$res"; else fail "$key" "exit=$rc"; fi
    r=$(parse_prof_attn "$logs/$name.log")
    [ -n "$r" ] && echo "attn:gt:$key $r" >>"$res"
    return 0
}

if want gemmatron; then
    if [ ! -x "$bin" ] && [ -z "${GT_BIN:-}" ]; then
        echo "=== building build-gpu"
        # As tests/gpu/run.sh: the carried -dev packages and cudnn-frontend headers of .gpu-deps/.
        fe=""
        [ -f .gpu-deps/cudnn-frontend/include/cudnn_frontend.h ] && fe=$PWD/.gpu-deps/cudnn-frontend/include
        { { [ ! -d .gpu-deps ] || bash .gpu-deps/install.sh; } &&
            cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a -DCMAKE_BUILD_TYPE=Release \
                ${fe:+-DGT_CUDNN_FRONTEND_DIR=$fe} &&
            make -C build-gpu -j"$(nproc)" gemmatron; } >"$logs/build.log" 2>&1 ||
            echo "=== build failed: $logs/build.log"
    fi
    m=(--model "$model" --set "optim.state=${GT_OPT_STATE:-bf16}" --set "optim.grads=${GT_OPT_GRADS:-bf16}")
    gt g_bf16_1 gt-bf16 "${m[@]}" --batch 2 --seq 2048 --steps 10 --warmup 3 --profile
    gt g_bf16m_1 gt-bf16-fp32-state --model "$model" --set optim.state=fp32 --batch 2 --seq 2048 --steps 10 --warmup 3
    gt g_fp8_1 gt-fp8 "${m[@]}" --batch 2 --seq 2048 --steps 10 --warmup 3 --fp8
    gt g_fp8h_1 gt-fp8-head "${m[@]}" --batch 2 --seq 2048 --steps 10 --warmup 3 --fp8-lm-head
    gt g_bf16_8 gt-bf16-accum8 "${m[@]}" --batch 2 --seq 2048 --steps 3 --warmup 1 --accum 8
    gt g_fp8_8 gt-fp8-accum8 "${m[@]}" --batch 2 --seq 2048 --steps 3 --warmup 1 --accum 8 --fp8
    gt g_fp8h_8 gt-fp8-head-accum8 "${m[@]}" --batch 2 --seq 2048 --steps 3 --warmup 1 --accum 8 --fp8-lm-head
    gt g_bf16_L gt-bf16-8192 "${m[@]}" --batch 1 --seq 8192 --steps 5 --warmup 2 --profile
    gt g_fp8_L gt-fp8-8192 "${m[@]}" --batch 1 --seq 8192 --steps 5 --warmup 2 --fp8
    # Gemma-7B's attention shapes (16 heads, 16 KV heads, head_dim 256) from 2 layers of its config
    d7=$logs/gemma-7b-2layers
    mkdir -p "$d7"
    sed 's/"num_hidden_layers": *[0-9]*/"num_hidden_layers": 2/' configs/hf/gemma-7b/config.json >"$d7/config.json"
    gt g7_2048 gt-7b-attn-2048 --model "$d7" --batch 2 --seq 2048 --steps 2 --warmup 1 --profile
    gt g7_4096 gt-7b-attn-4096 --model "$d7" --batch 1 --seq 4096 --steps 2 --warmup 1 --profile
    ops=build-gpu/tests/gpu/test_ops_gpu
    if [ -x "$ops" ]; then
        run gt-ops-bench 180 "$ops" --bench
        r=$(parse_ops_attn "$logs/gt-ops-bench.log")
        if [ -n "$r" ]; then echo "attn:ops $r" >>"$res"; else fail attn:ops "test_ops_gpu --bench gave no attention row"; fi
    fi
fi

# hf TAG LOGNAME TIMEOUT ACCUMS ARGS...: one bench_hf.py process; records "TAG_K step_ms tokens_per_s peak sdpa_kernel" for each K of ACCUMS
hf() {
    local tag=$1 name=$2 t=$3 accums=$4
    shift 4
    run "$name" "$t" "$py" scripts/bench_hf.py --config "$model/config.json" --accum "$accums" "$@"
    local rc=$? k r
    for k in ${accums//,/ }; do
        r=$(awk -v K="$k" '/^hf / {
                split("", a)
                for (i = 2; i <= NF; i++) { n = index($i, "="); if (!n) continue
                    a[substr($i, 1, n - 1)] = substr($i, n + 1) }
                if (a["accum"] == K && a["step_ms"] != "") print a["step_ms"], a["tokens_per_s"], a["peak_mem_gib"], a["sdpa_kernel"]
            }' "$logs/$name.log" | tail -1)
        if [ -n "$r" ]; then echo "${tag}_$k $r" >>"$res"; else fail "${tag}_$k" "exit=$rc"; fi
    done
    return 0
}

if want hf; then
    hf hf_compile_S hf-compile-2048 480 1,8 --mode compile --batch 2 --seq 2048 --steps 10 --warmup 3 --steps-accum 3 --warmup-accum 1
    hf hf_compile_L hf-compile-8192 420 1 --mode compile --batch 1 --seq 8192 --steps 5 --warmup 3
    if [ "${HF_EXTRA:-0}" = 1 ]; then
        hf hf_eager_S hf-eager-2048 300 1 --mode eager --batch 2 --seq 2048 --steps 10 --warmup 3
        hf hf_autocast_S hf-autocast-2048 300 1 --mode autocast --batch 2 --seq 2048 --steps 10 --warmup 3
    fi
fi

if want sdpa; then
    run sdpa 300 "$py" scripts/bench_sdpa.py --backends cudnn,flash
    rc=$?
    # sdpa backend=cudnn shape=gemma-2b B=2 T=2048 Hq=8 Hkv=1 D=256 kv=gqa fwd_ms=.. fwd_tflops=.. bwd_ms=.. bwd_tflops=..
    awk '/^sdpa / {
        split("", a)
        for (i = 2; i <= NF; i++) { n = index($i, "="); k = substr($i, 1, n - 1)  # the first of a key wins, not words of a reason
            if (n && !(k in a)) a[k] = substr($i, n + 1) }
        key = "attn:" a["backend"] ":" a["shape"] ":" a["B"] "x" a["T"]
        if (a["fwd_tflops"] != "") print key, a["fwd_tflops"], a["bwd_tflops"], a["kv"]
        else print key, "FAIL", (index($0, "unsupported") ? "unsupported" : "error")
    }' "$logs/sdpa.log" >>"$res"
    grep -q '^attn:cudnn:' "$res" || fail attn:cudnn:gemma-2b:2x2048 "bench_sdpa exit=$rc"
fi

# ---- the table ------------------------------------------------------------------------------
declare -A R
while read -r k rest; do R[$k]=$rest; done <"$res"
# raw KEY N: the Nth word recorded for KEY ("-" if none); field KEY N: the same, FAIL for a failed run
raw() {
    local -a w
    read -ra w <<<"${R[$1]-}"
    echo "${w[$(($2 - 1))]:--}"
}
field() {
    if [ "$(raw "$1" 1)" = FAIL ]; then echo FAIL; else raw "$1" "$2"; fi
}
# what to say of an SDPA backend beside its name: kv=gqa/mha/expanded, or why it has no figure
kvnote() { if [ "$(raw "$1" 1)" = FAIL ]; then raw "$1" 2; else raw "$1" 3; fi; }
ratio() { # ratio A B: A/B as 1.23x, or - when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'
}
row() { # row SETTING LABEL KEY HFKEY
    local tps
    tps=$(field "$3" 2)
    printf '%-22s %-34s %9s %10s %9s %7s\n' "$1" "$2" "$(field "$3" 1)" "$tps" "$(field "$3" 3)" \
        "$(ratio "$tps" "$(field "$4" 2)")"
}
arow() { # arow SHAPE LABEL KEY REFKEY
    local f b
    f=$(field "$3" 1)
    b=$(field "$3" 2)
    printf '%-33s %-34s %8s %8s %12s %12s\n' "$1" "$2" "$f" "$b" "$(ratio "$f" "$(field "$4" 1)")" \
        "$(ratio "$b" "$(field "$4" 2)")"
}

echo
echo "=== summary: ${gpu:-GPU ?}; $model; $((SECONDS - t_start)) s; logs $logs"
echo "tokens/s ratio = tokens/s / HF's (transformers GemmaForCausalLM, bf16, torch.compile, fused AdamW, clip 1.0) at the same setting"
echo "gemmatron: optim.state=${GT_OPT_STATE:-bf16} optim.grads=${GT_OPT_GRADS:-bf16} (pure bf16 as HF's) but where the row says fp32"
printf '%-22s %-34s %9s %10s %9s %7s\n' setting what step_ms tokens/s mem_GiB vs_HF
for s in S:1:"B=2 T=2048, 1 mb" S:8:"B=2 T=2048, 8 mb" L:1:"B=1 T=8192"; do
    shp=${s%%:*} rest=${s#*:}
    k=${rest%%:*} label=${rest#*:}
    if [ "$shp" = S ]; then
        hk=hf_compile_S_$k
        row "$label" "gemmatron BF16" "g_bf16_$k" "$hk"
        [ "$k" = 1 ] && row "$label" "gemmatron BF16, fp32 master+moments" g_bf16m_1 "$hk"
        row "$label" "gemmatron FP8" "g_fp8_$k" "$hk"
        row "$label" "gemmatron FP8 + lm_head" "g_fp8h_$k" "$hk"
    else
        hk=hf_compile_L_1
        row "$label" "gemmatron BF16" g_bf16_L "$hk"
        row "$label" "gemmatron FP8" g_fp8_L "$hk"
    fi
    row "$label" "HF compile + fused AdamW" "$hk" "$hk"
    if [ "$shp$k" = S1 ] && [ "${HF_EXTRA:-0}" = 1 ]; then
        row "$label" "HF eager + fused AdamW" hf_eager_S_1 "$hk"
        row "$label" "HF fp32 master + autocast" hf_autocast_S_1 "$hk"
    fi
done
echo "(mb: micro-batches per optimizer step. mem: gemmatron's device memory in use (CUDA context included);"
echo " HF's torch.cuda.max_memory_allocated. HF's SDPA kernel: $(field hf_compile_S_1 4))"
echo
echo "attention, causal bf16 head_dim 256, TFLOP/s: fwd FLOPs = 4*B*Hq*T^2*D/2, bwd = 2.5 x fwd; ratios vs torch SDPA cuDNN"
printf '%-33s %-34s %8s %8s %12s %12s\n' shape what fwd bwd fwd_vs_cudnn bwd_vs_cudnn
for s in "gemma-2b:2x2048:Hq=8 Hkv=1:g_bf16_1" "gemma-2b:1x8192:Hq=8 Hkv=1:g_bf16_L" \
    "gemma-7b:2x2048:Hq=16 Hkv=16:g7_2048" "gemma-7b:1x4096:Hq=16 Hkv=16:g7_4096"; do
    IFS=: read -r name bt heads gk <<<"$s"
    shp="$name B=${bt%x*} T=${bt#*x} $heads"
    ref=attn:cudnn:$name:$bt
    arow "$shp" "gemmatron (bench --profile)" "attn:gt:$gk" "$ref"
    [ "$name:$bt" = gemma-2b:2x2048 ] && [ -n "${R[attn:ops]-}" ] && arow "$shp" "gemmatron (test_ops_gpu --bench)" attn:ops "$ref"
    arow "$shp" "torch SDPA cuDNN ($(kvnote "$ref"))" "$ref" "$ref"
    arow "$shp" "torch SDPA flash ($(kvnote "attn:flash:$name:$bt"))" "attn:flash:$name:$bt" "$ref"
done
echo "(gemmatron's Gemma-7B rows: a 2-layer model of Gemma-7B's config, same attention shapes. Raw results: $res)"
