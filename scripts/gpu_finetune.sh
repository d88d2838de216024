#!/usr/bin/env bash
# GPU evidence for the fine-tuning issues: Gemma-2B fine-tunes on one GPU (BF16 and FP8) and at tp=2,
# bitwise resume on the GPU, export checked against transformers, and the Gemma-7B checkpoint write
# time against the disk's bandwidth. Run from anywhere on the GPU machine; everything goes under
# runs/gpu/ (ignored by git). Each section fits in about 8 minutes on a fresh machine (build
# included); several can be given at once:
#
#   bash scripts/gpu_finetune.sh SECTION [SECTION ...]
#
#   setup    build build-gpu (cmake + make gemmatron), make the data shards, and write a randomly
#            initialized Gemma-2B as an HF directory with transformers (runs/gpu/hf-gemma-2b); every
#            other section runs what it needs of this first, skipping what is already there
#   1gpu     configs/gemma-2b-1gpu.yaml, then configs/gemma-2b-1gpu-fp8.yaml, from that directory on
#            the same data (micro_batch 2, seq 2048, grad_accum 1, lr $LR, warmup 20, eval every
#            100, $STEPS steps): first/final loss of each, relative difference of the final losses
#            (target: 1%), throughput, MFU; plots (loss, lr, throughput, MFU, FP8 amax/scale).
#            The data: ~8 MB of Python source as byte tokens (make_data), never a repeated batch
#   tp2      the same BF16 fine-tune at tp=2 (configs/gemma-2b-tp2.yaml, mpirun -np 2, $TP2_STEPS
#            steps), and with TP2_REF=1 (default) the same steps at tp=1 on the same machine to
#            compare with (needs 2 GPUs)
#   tp2-fp8  the same with FP8 (the tp=2 config with fp8.enabled and 10 calibration steps, as
#            configs/gemma-2b-1gpu-fp8.yaml), against configs/gemma-2b-1gpu-fp8.yaml at tp=1
#   resume   resume-bf16 and resume-fp8: 30 steps uninterrupted vs. stopped (SIGTERM) after step
#            20 and resumed to 30, Gemma-2B from its random init, seq $RESUME_SEQ: the losses and
#            gradient norms of steps 21-30 (metrics.h5) must be bitwise equal
#   export   `gemmatron export` of a checkpoint (of the 1gpu run when one is on the disk, else of a
#            30-step run made here) to F32 and to BF16, each loaded by transformers and compared
#            with `gemmatron eval --logits` on the first $EXPORT_T tokens of the val shard; the F32
#            export also on gemmatron's CPU backend (float32) on the first $EXPORT_CPU_T tokens
#   states   the 1gpu BF16 fine-tune ($STATES_STEPS steps, no checkpoints) once per optim.state
#            (fp32, bf16_moments, bf16): each lean state's losses against fp32's (final-loss relative
#            difference, target 1%), tokens/s and device memory of each
#   7b1gpu   Gemma-7B fine-tuned on one GPU (configs/gemma-7b-1gpu.yaml, the lean optimizer state) from
#            an HF random init, B=1 x 2048, $STEPS_7B steps (loss, non-finite steps, tokens/s,
#            memory, the memory plan's line), then HF transformers' step on the same GPU (eager and
#            compile, fused AdamW): tokens/s and peak memory to compare with
#   ckpt7b   the disk's write bandwidth (dd), then Gemma-7B at tp=2 (configs/gemma-7b-tp2.yaml,
#            random init, 2 steps): the trainer's own time for writing its checkpoint, in GB/s
#            (needs 2 GPUs with about 90 GB each: 2 x H200, and about 125 GB of free disk)
#   disk     only the dd measurement
#
# Every section prints lines starting with "SUMMARY" (also appended to runs/gpu/summary.txt); the
# full output of every gemmatron run is in runs/gpu/logs/. When OUT is set, the summary, metrics.h5
# files and plots are copied there (flat names).
#
# Environment: DD_MIB (disk, 8192), STATES_STEPS (200), STEPS_7B (200), SET_7B (extra --set options of the 7b1gpu run), HF_MODES_7B (the
# 7b1gpu HF runs, "eager compile"), MODEL_7B (its model: an HF directory with weights;
# default an HF init that transformers writes), STEPS (1gpu, 300), LR (1gpu and tp2 peak learning rate, 3e-4), TP2_STEPS (200), TP2_REF (1), CKPT_EVERY (1gpu/tp2 checkpoint.every,
# 0: only the end-of-run checkpoint, which the trainer always writes), KEEP_CKPT (0: delete big
# checkpoints once they are no longer needed), RESUME_SEQ (512), CKPT7B_LAYERS (28), RESUME_LAYERS (18: Gemma-2B; fewer
# keeps every tensor shape but writes smaller checkpoints), EXPORT_T (512), EXPORT_CPU_T (16; 0:
# skip the CPU check).
#
# Disk: a Gemma-2B checkpoint (BF16 weights + FP32 master weights and AdamW moments) is ~35 GB, a
# Gemma-7B one ~120 GB; the trainer deletes an old checkpoint only once the new one is complete, so
# checkpoint.every with 2 checkpoints of Gemma-2B needs ~75 GB free (the H100 machine has 64 GiB):
# CKPT_EVERY=100 only where the disk allows it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export NCCL_NVLS_ENABLE=0 # never NVLink multicast on shared machines
export PYTHONUNBUFFERED=1

G=runs/gpu
BIN=build-gpu/gemmatron
PY=${PY:-python3}
MPI=(mpirun -np 2 --allow-run-as-root -x NCCL_NVLS_ENABLE=0)
HF=$G/hf-gemma-2b
TRAIN=$G/data/train.bin
VAL=$G/data/val.bin
STEPS=${STEPS:-300}
LR=${LR:-3e-4}
TP2_STEPS=${TP2_STEPS:-200}
TP2_REF=${TP2_REF:-1}
CKPT_EVERY=${CKPT_EVERY:-0}
KEEP_CKPT=${KEEP_CKPT:-0}
RESUME_SEQ=${RESUME_SEQ:-512}
RESUME_LAYERS=${RESUME_LAYERS:-18}
EXPORT_T=${EXPORT_T:-512}
EXPORT_CPU_T=${EXPORT_CPU_T:-16}
STEPS_7B=${STEPS_7B:-200}
SET_7B=${SET_7B:-}
STATES_STEPS=${STATES_STEPS:-200}
HF_MODES_7B=${HF_MODES_7B:-eager compile}
MODEL_7B=${MODEL_7B:-$G/hf-gemma-7b}

# ---------------------------------------------------------------------------------------------- helpers
say() { # say TEXT...: every line of every argument as a SUMMARY line, also in runs/gpu/summary.txt
    printf '%s\n' "$@" | sed 's/^/SUMMARY /' | tee -a $G/summary.txt
}
keep() { # keep FILE NAME: copies FILE to $OUT/NAME when OUT is set
    [ -n "${OUT:-}" ] && [ -f "$1" ] && cp "$1" "$OUT/$2"
    return 0
}
free_gb() { df -Pk $G | awk 'NR == 2 { printf "%d", $4 * 1024 / 1e9 }'; }
need_gb() { # need_gb GB WHAT: fails with a message when the disk has less free space
    local have
    have=$(free_gb)
    if [ "$have" -lt "$1" ]; then
        echo "not enough disk for $2: ${have} GB free under $G, ~$1 GB needed (rm -rf $G/<old runs>)"
        return 1
    fi
}
ngpus() { nvidia-smi -L 2>/dev/null | grep -c '^GPU'; }
drop_ckpts() { # drop_ckpts RUN_DIR: deletes its checkpoints unless KEEP_CKPT=1
    [ "$KEEP_CKPT" = 1 ] || rm -rf "$1"/checkpoint-* "$1"/final
}
ckpt_line() { grep -E '^checkpoint: ' "$1" | tail -1; } # "checkpoint: DIR (S s)" of a log

# train_run NAME NPROC ARGS...: gemmatron train ARGS (under mpirun when NPROC is 2), all output in
# logs/NAME.log, progress lines shown; returns gemmatron's exit status.
train_run() {
    local name=$1 np=$2
    shift 2
    local log=$G/logs/$name.log launch=()
    [ "$np" -gt 1 ] && launch=("${MPI[@]}")
    echo "=== $name: ${launch[*]} $BIN train $*"
    local t0=$SECONDS
    : >"$log"
    "${launch[@]}" "$BIN" train "$@" >"$log" 2>&1 &
    local pid=$!
    tail -n +1 -f "$log" --pid=$pid 2>/dev/null |
        grep --line-buffered -E '^((data|checkpoint|fp8): [^ ]|step [0-9]+/[0-9]+ \||eval at|done:|gemmatron|resumed|stopped|note)'
    wait $pid
    local rc=$?
    echo "--- $name: exit $rc after $((SECONDS - t0)) s (log: $log)"
    [ $rc -ne 0 ] && tail -n 20 "$log"
    return $rc
}

# layers_config SRC_DIR N OUT_DIR: SRC_DIR's config.json with num_hidden_layers = N (every tensor
# keeps its shape; only the depth changes).
layers_config() {
    mkdir -p "$3"
    $PY - "$1/config.json" "$2" "$3/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["num_hidden_layers"] = int(sys.argv[2])
json.dump(c, open(sys.argv[3], "w"), indent=2)
EOF
}

plot() { # plot RUN_DIR NAME: plots/NAME.png, kept with the metrics
    keep "$1/metrics.h5" "$2.metrics.h5"
    if $PY -c "import matplotlib" 2>/dev/null; then
        $PY scripts/plot_metrics.py "$1/metrics.h5" -o $G/plots/"$2".png && keep $G/plots/"$2".png "$2.png"
    else
        echo "matplotlib is not importable: no plot of $1 (metrics.h5 kept)"
    fi
}

# ---------------------------------------------------------------------------------------------- setup
SETUP_DONE=0
setup() {
    [ $SETUP_DONE = 1 ] && return 0
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    [ -d .gpu-deps ] && bash .gpu-deps/install.sh >/dev/null
    local t0=$SECONDS
    if ! { cmake -S . -B build-gpu -DGT_CUDA_ARCH=90a -DCMAKE_BUILD_TYPE=Release >$G/logs/build.log 2>&1 &&
        make -C build-gpu -j"$(nproc)" gemmatron >>$G/logs/build.log 2>&1; }; then
        grep -E "error|Error" $G/logs/build.log | head -20
        say "setup: FAIL: build failed (runs/gpu/logs/build.log)"
        return 1
    fi
    echo "build: $((SECONDS - t0)) s"
    make_data || return 1
    SETUP_DONE=1
}

# The corpus: Python source of the installed transformers package (the GPU machine has no network
# and no Gemma tokenizer), byte-level tokens in Gemma's 256k vocabulary, about $CORPUS_MB MB: enough
# that a few hundred steps of 2 x 2048 tokens never repeat a batch. The last 2% of the files are
# the validation split. Without transformers: the bundled demo text (5218 tokens, memorized fast).
make_data() {
    if [ ! -s $TRAIN ] || [ ! -s $VAL ]; then
        if $PY - $G/data/corpus.jsonl "${CORPUS_MB:-8}" <<'EOF'
import json, os, sys
import transformers
root, budget = os.path.dirname(transformers.__file__), float(sys.argv[2]) * 1e6
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".py"))
total = 0
with open(sys.argv[1], "w") as out:
    for path in files:
        text = open(path, encoding="utf-8", errors="replace").read()
        if len(text) < 2000:
            continue
        out.write(json.dumps({"text": text}) + "\n")
        total += len(text)
        if total > budget:
            break
print(f"data: corpus of {total / 1e6:.1f} MB of transformers' Python source from {root}")
EOF
        then
            $PY scripts/prepare_data.py --byte --vocab-size 256000 --input $G/data/corpus.jsonl --output $TRAIN \
                --val-output $VAL --val-fraction 0.02 || return 1
        else
            $PY scripts/prepare_data.py --byte --vocab-size 256000 --input data/demo/train.jsonl --output $TRAIN || return 1
            # val.jsonl is 1002 tokens, less than one sequence of 2048: its documents 5 times over.
            for _ in 1 2 3 4 5; do cat data/demo/val.jsonl; done >$G/data/val_x5.jsonl
            $PY scripts/prepare_data.py --byte --vocab-size 256000 --input $G/data/val_x5.jsonl --output $VAL || return 1
        fi
    fi
    $PY - $TRAIN $VAL <<'EOF'
import struct, sys
for p in sys.argv[1:]:
    h = open(p, "rb").read(64)
    _, _, n, vocab = struct.unpack("<IIQI", h[8:28])
    print(f"data: {p}: {n} tokens, vocabulary {vocab} in the header, {n // 2048} sequences of 2048, {n // 512} of 512")
EOF
}

hf_init() { # hf_init [CONFIG_DIR OUT_DIR]: an HF random init written by transformers (default Gemma-2B)
    local cfg=${1:-configs/hf/gemma-2b} out=${2:-$HF}
    [ -f "$out/config.json" ] && ls "$out"/*.safetensors >/dev/null 2>&1 && return 0
    if ! $PY scripts/gpu_make_hf_init.py --config "$cfg" --out "$out" --dtype bf16 >$G/logs/hf_init.log 2>&1; then
        tail -15 $G/logs/hf_init.log
        say "setup: FAIL: transformers could not write $out ($G/logs/hf_init.log)"
        return 1
    fi
    grep '^hf init:' $G/logs/hf_init.log
}

# The fine-tune of 1gpu and tp2 (run config keys: train/config/run_config.c): from the HF random init, on
# the byte-level demo shards, micro_batch 2 x seq 2048, no accumulation, a learning rate high enough
# for the loss to fall visibly in a few hundred steps.
FT=(--set "model.path=$HF" --set "data.train=[$TRAIN]" --set "data.val=[$VAL]" --set data.seq_len=2048
    --set data.micro_batch=2 --set data.grad_accum=1 --set "optim.lr=$LR" --set optim.warmup_steps=20
    --set train.eval_every=100 --set train.log_every=25 --set "checkpoint.every=$CKPT_EVERY"
    --set checkpoint.keep=1 --set train.save_final=false)

# ---------------------------------------------------------------------------------------------- 1gpu
sec_1gpu() {
    setup && hf_init || return 1
    need_gb 40 "the BF16 run's end-of-run checkpoint (35 GB)" || return 1
    rm -rf $G/1gpu-bf16 $G/1gpu-fp8
    train_run 1gpu-bf16 1 --config configs/gemma-2b-1gpu.yaml --run-dir $G/1gpu-bf16 --set train.steps=$STEPS "${FT[@]}"
    local rc_b=$?
    # The export section can reuse this checkpoint if it is still here; the FP8 run needs room first.
    [ "$(free_gb)" -lt 45 ] && rm -rf $G/1gpu-bf16/checkpoint-*
    need_gb 40 "the FP8 run's end-of-run checkpoint" || return 1
    train_run 1gpu-fp8 1 --config configs/gemma-2b-1gpu-fp8.yaml --run-dir $G/1gpu-fp8 --set train.steps=$STEPS "${FT[@]}"
    local rc_f=$?
    drop_ckpts $G/1gpu-fp8
    local cmp
    cmp=$($PY scripts/gpu_compare_runs.py $G/1gpu-bf16/metrics.h5 $G/1gpu-fp8/metrics.h5 --labels bf16,fp8 --target 0.01 2>&1)
    echo "$cmp" >$G/logs/1gpu-compare.txt
    plot $G/1gpu-bf16 1gpu-bf16
    plot $G/1gpu-fp8 1gpu-fp8
    say "1gpu: BF16 run exit $rc_b, FP8 run exit $rc_f ($STEPS steps each; $(grep -m1 '^data: [0-9]' $G/logs/1gpu-bf16.log))" \
        "1gpu: end-of-run checkpoint: BF16 $(ckpt_line $G/logs/1gpu-bf16.log | sed 's/^checkpoint: //'), FP8 $(ckpt_line $G/logs/1gpu-fp8.log | sed 's/^checkpoint: //')" \
        "$(echo "$cmp" | sed 's/^/1gpu: /')"
}

# ---------------------------------------------------------------------------------------------- states
sec_states() {
    setup && hf_init || return 1
    local st rc lines=()
    for st in fp32 bf16_moments bf16; do
        rm -rf $G/states-$st
        train_run states-$st 1 --config configs/gemma-2b-1gpu.yaml --run-dir $G/states-$st \
            --set train.steps=$STATES_STEPS "${FT[@]}" --set checkpoint.every=0 --set optim.state=$st
        rc=$?
        # the end-of-run checkpoint of each state is 26-35 GB: three of them overrun a 64 GB disk
        drop_ckpts $G/states-$st
        lines+=("states: $st: exit $rc, $(grep -m1 -E '^memory plan' $G/logs/states-$st.log | cut -c1-60)")
        [ $rc -ne 0 ] && lines+=("states: $st: $(tail -n 1 $G/logs/states-$st.log)")
        plot $G/states-$st states-$st
    done
    say "${lines[@]}" "$($PY scripts/gpu_compare_runs.py $G/states-fp32/metrics.h5 $G/states-bf16_moments/metrics.h5 \
        $G/states-bf16/metrics.h5 --labels fp32,bf16_moments,bf16 --target 0.01 2>&1 | sed 's/^/states: /')"
}

# ---------------------------------------------------------------------------------------------- tp2
sec_tp2() { # bf16 | fp8
    local prec=$1 name=tp2 ref=configs/gemma-2b-1gpu.yaml prec_set=()
    if [ "$prec" = fp8 ]; then
        name=tp2-fp8 ref=configs/gemma-2b-1gpu-fp8.yaml
        prec_set=(--set fp8.enabled=true --set fp8.calibration_steps=10)
    fi
    if [ "$(ngpus)" -lt 2 ]; then
        say "$name: SKIP: needs 2 GPUs, this machine has $(ngpus)"
        return 0
    fi
    setup && hf_init || return 1
    need_gb 40 "the tp=2 run's end-of-run checkpoint (35 GB)" || return 1
    rm -rf "$G/$name" "$G/$name-ref"
    train_run $name 2 --config configs/gemma-2b-tp2.yaml --run-dir "$G/$name" --set train.steps=$TP2_STEPS \
        "${FT[@]}" "${prec_set[@]}"
    local rc=$?
    local runs=("$G/$name/metrics.h5") labels=$name
    drop_ckpts "$G/$name"
    plot "$G/$name" $name
    if [ "$TP2_REF" = 1 ]; then
        train_run $name-ref 1 --config $ref --run-dir "$G/$name-ref" --set train.steps=$TP2_STEPS "${FT[@]}"
        drop_ckpts "$G/$name-ref"
        plot "$G/$name-ref" $name-ref
        runs=("$G/$name-ref/metrics.h5" "$G/$name/metrics.h5") labels="tp1 $prec,tp2 $prec"
    fi
    local cmp
    cmp=$($PY scripts/gpu_compare_runs.py "${runs[@]}" --labels "$labels" --target 0.01 2>&1)
    echo "$cmp" >$G/logs/$name-compare.txt
    say "$name: tp=2 run exit $rc ($TP2_STEPS steps, $(grep -m1 'gemmatron train:' $G/logs/$name.log | sed 's/.*, on //'))" \
        "$name: end-of-run checkpoint: $(ckpt_line $G/logs/$name.log | sed 's/^checkpoint: //')" \
        "$(echo "$cmp" | sed "s/^/$name: /")"
}

# ---------------------------------------------------------------------------------------------- resume
sec_resume_one() { # bf16 | fp8
    local prec=$1 cfg=configs/gemma-2b-1gpu.yaml mc=configs/hf/gemma-2b
    [ "$prec" = fp8 ] && cfg=configs/gemma-2b-1gpu-fp8.yaml
    setup || return 1
    if [ "$RESUME_LAYERS" != 18 ]; then
        mc=$G/gemma-2b-L$RESUME_LAYERS
        layers_config configs/hf/gemma-2b "$RESUME_LAYERS" $mc
    fi
    # One checkpoint on the disk at a time (gpu_resume_check.py deletes each once it has been read).
    need_gb 40 "one Gemma-2B checkpoint (35 GB)" || return 1
    local out
    out=$($PY scripts/gpu_resume_check.py --bin $BIN --config $cfg --root $G/resume-$prec --steps 30 --stop-after 20 \
        --label "$prec (Gemma-2B shape, $RESUME_LAYERS layers, seq $RESUME_SEQ)" \
        --set model.path=null --set "model.config=$mc" --set "data.train=[$TRAIN]" --set "data.val=[]" \
        --set train.eval_every=0 --set "data.seq_len=$RESUME_SEQ" --set data.micro_batch=2 --set data.grad_accum=1 \
        --set optim.lr=3e-4 --set optim.warmup_steps=5 --set checkpoint.every=0 --set checkpoint.keep=1 \
        --set train.save_final=false 2>&1)
    echo "$out"
    grep -E '^(\$ |checkpoint: [^ ]|resumed|stopped|\[exit)' $G/resume-$prec/log.txt 2>/dev/null | cut -c1-200
    local result
    result=$(echo "$out" | grep -E '^RESUME' | tail -1)
    say "resume: ${result:-$prec FAIL: no result line (see $G/resume-$prec/log.txt)}"
}

# ---------------------------------------------------------------------------------------------- export
sec_export() {
    setup && hf_init || return 1
    local ck
    ck=$(ls -d $G/1gpu-bf16/checkpoint-* 2>/dev/null | tail -1)
    if [ -z "$ck" ] || ! $BIN inspect "$ck" >/dev/null 2>&1; then
        need_gb 50 "a Gemma-2B checkpoint (35 GB) and its F32 export (10 GB)" || return 1
        rm -rf $G/export-src
        train_run export-src 1 --config configs/gemma-2b-1gpu.yaml --run-dir $G/export-src --set train.steps=30 \
            "${FT[@]}" --set data.seq_len=512 --set "data.val=[]" --set train.eval_every=0 --set optim.warmup_steps=5 ||
            return 1
        ck=$(ls -d $G/export-src/checkpoint-* | tail -1)
    fi
    echo "export: from $ck"
    local ids=$G/data/export_ids.txt ids_cpu=$G/data/export_ids_cpu.txt results=()
    $PY scripts/gpu_check_export.py ids --shard $VAL --count "$EXPORT_T" --out $ids || return 1
    [ "$EXPORT_CPU_T" -gt 0 ] && $PY scripts/gpu_check_export.py ids --shard $VAL --count "$EXPORT_CPU_T" --out $ids_cpu
    for dt in fp32 bf16; do
        local dir=$G/export-$dt t0=$SECONDS
        rm -rf "$dir"
        if ! $BIN export --checkpoint "$ck" --out "$dir" --dtype $dt >$G/logs/export-$dt.log 2>&1; then
            tail -5 $G/logs/export-$dt.log
            results+=("export $dt: FAIL: gemmatron export failed ($G/logs/export-$dt.log)")
            continue
        fi
        echo "export $dt: $(du -sh "$dir" | cut -f1) in $((SECONDS - t0)) s: $(ls "$dir" | tr '\n' ' ')"
        # gemmatron's CUDA forward (BF16 weights and activations) vs transformers in float32: the BF16
        # tolerance of tests/gpu/test_gpu_step.c (logits 4e-2 relative norm, loss 5e-3), within which
        # transformers' own bf16 model stays (its error is printed as the band).
        local npy=$G/export-logits-$dt.npy line loss
        line=$($BIN eval --model "$dir" --data $ids --device cuda --logits $npy 2>>$G/logs/export-$dt.log | tail -1)
        loss=$(echo "$line" | sed -n 's/^eval_loss=\([^ ]*\) .*/\1/p')
        if [ -z "$loss" ]; then
            tail -5 $G/logs/export-$dt.log
            results+=("export $dt: FAIL: gemmatron eval on the export failed")
        else
            local band=()
            [ $dt = fp32 ] && band=(--bf16-band)
            $PY scripts/gpu_check_export.py compare --model "$dir" --ids $ids --logits $npy --gt-loss "$loss" --tol 4e-2 \
                --loss-tol 5e-3 --checkpoint "$ck" --label "$dt export, gemmatron cuda" "${band[@]}" 2>&1 |
                grep -vE "Warning|warn|^\s*$" | tee $G/logs/export-$dt-compare.txt
            results+=("$(grep '^EXPORT' $G/logs/export-$dt-compare.txt || echo "export $dt: FAIL: comparison did not finish")")
        fi
        # The F32 export on gemmatron's CPU backend (float32): the HF parity tolerance of
        # tests/cpu/test_hf_parity.c (logits 1e-4, loss 1e-5).
        if [ $dt = fp32 ] && [ "$EXPORT_CPU_T" -gt 0 ]; then
            line=$(timeout 400 $BIN eval --model "$dir" --data $ids_cpu --device cpu --logits $G/export-logits-cpu.npy \
                2>>$G/logs/export-$dt.log | tail -1)
            loss=$(echo "$line" | sed -n 's/^eval_loss=\([^ ]*\) .*/\1/p')
            if [ -n "$loss" ]; then
                $PY scripts/gpu_check_export.py compare --model "$dir" --ids $ids_cpu --logits $G/export-logits-cpu.npy \
                    --gt-loss "$loss" --tol 1e-4 --loss-tol 1e-5 --label "fp32 export, gemmatron cpu" 2>&1 |
                    grep -vE "Warning|warn|^\s*$" | tee $G/logs/export-cpu-compare.txt
                results+=("$(grep '^EXPORT' $G/logs/export-cpu-compare.txt || echo "export cpu: FAIL: comparison did not finish")")
            else
                results+=("export fp32 on the CPU backend: FAIL or timeout ($G/logs/export-$dt.log)")
            fi
        fi
        rm -rf "$dir" $G/export-logits-*.npy
    done
    [ "$KEEP_CKPT" = 1 ] || rm -rf $G/export-src
    local r
    for r in "${results[@]}"; do say "export: $r"; done
}

# ---------------------------------------------------------------------------------------------- 7b1gpu
# Gemma-7B fine-tuned on one GPU (configs/gemma-7b-1gpu.yaml: the lean optimizer state), from an HF
# random init written by transformers, B=1 x 2048, $STEPS_7B steps; then HF transformers' training
# step on the same GPU (scripts/bench_hf.py, pure bf16, fused AdamW, clip 1.0; eager and compile):
# tokens/s (the median step of steps 11.. of the run), peak memory, loss first/last.
sec_7b1gpu() {
    setup || return 1
    if [ "$MODEL_7B" = $G/hf-gemma-7b ]; then
        need_gb 25 "a Gemma-7B HF directory (17 GB)" || return 1
        hf_init configs/hf/gemma-7b $G/hf-gemma-7b || return 1
    fi
    rm -rf $G/7b1gpu
    # shellcheck disable=SC2086 # SET_7B is a list of options
    train_run 7b1gpu 1 --config configs/gemma-7b-1gpu.yaml --run-dir $G/7b1gpu --set "model.path=$MODEL_7B" \
        --set "data.train=[$TRAIN]" --set "data.val=[]" --set train.eval_every=0 --set train.steps=$STEPS_7B \
        --set data.grad_accum=1 --set optim.lr=1e-4 --set optim.warmup_steps=20 --set train.log_every=25 \
        --set train.save_final=false --set checkpoint.every=0 $SET_7B
    local rc=$? ours
    ours=$($PY - $G/7b1gpu/metrics.h5 <<'EOF'
import sys, h5py, numpy as np
t = h5py.File(sys.argv[1], "r")["/train"]
c = lambda k: np.asarray(t[k][:], dtype=float)
loss, tps, mem = c("loss"), c("tokens_per_s"), c("gpu_mem_gib")
fin = np.isfinite(loss)
print(f"gemmatron {len(loss)} steps, non-finite {int((~fin).sum())}, loss {loss[0]:.4f} -> mean of last 10 "
      f"{np.nanmean(loss[-10:]):.4f}, tokens/s {np.median(tps[10:]):.0f} (median of steps 11..), "
      f"device memory {np.nanmax(mem):.1f} GiB")
EOF
)
    say "7b1gpu: run exit $rc; $ours" "7b1gpu: $(grep -m1 -E '^memory' $G/logs/7b1gpu.log)"
    for mode in $HF_MODES_7B; do
        local hf
        hf=$(timeout 400 $PY scripts/bench_hf.py --config configs/hf/gemma-7b --mode $mode --batch 1 --seq 2048 \
            --steps 8 2>&1 | tee $G/logs/7b1gpu-hf-$mode.log | grep '^hf ' | tail -1)
        say "7b1gpu: HF $mode: ${hf:-FAIL (see $G/logs/7b1gpu-hf-$mode.log)}"
    done
}

# ---------------------------------------------------------------------------------------------- disk, ckpt7b
DD_RESULT=""
dd_one() { # dd_one LABEL DD-ARGS...: prints "LABEL: X GB in S s = R GB/s"
    local label=$1 out
    shift
    out=$(dd if=/dev/zero bs=1M "$@" 2>&1 | tail -1)
    echo "$out" | awk -v l="$label" '/copied/ { printf "%s: %.2f GB in %.2f s = %.2f GB/s\n", l, $1 / 1e9, $(NF-3), $1 / 1e9 / $(NF-3) }
        !/copied/ { print l ": failed: " $0 }'
}
sec_disk() {
    local mib=${DD_MIB:-8192} a b c t0 t1
    need_gb $((mib * 2 / 1000 + 4)) "the dd test" || return 1
    sync
    a=$(dd_one "dd $mib MiB, 1 MiB blocks, oflag=direct" of=$G/ddtest count=$mib oflag=direct)
    rm -f $G/ddtest
    b=$(dd_one "dd $mib MiB, 1 MiB blocks, conv=fdatasync" of=$G/ddtest count=$mib conv=fdatasync)
    rm -f $G/ddtest
    # two writers at once, as the two tp ranks of a checkpoint write
    t0=$(date +%s.%N)
    dd if=/dev/zero of=$G/ddtest1 bs=1M count=$((mib / 2)) conv=fdatasync 2>/dev/null &
    dd if=/dev/zero of=$G/ddtest2 bs=1M count=$((mib / 2)) conv=fdatasync 2>/dev/null
    wait
    t1=$(date +%s.%N)
    c=$(awk -v a="$t0" -v b="$t1" -v m="$mib" 'BEGIN { g = m * 1048576 / 1e9
        printf "dd 2 writers x %d MiB at once, conv=fdatasync: %.2f GB in %.2f s = %.2f GB/s", m / 2, g, b - a, g / (b - a) }')
    rm -f $G/ddtest1 $G/ddtest2
    DD_RESULT="$a; $b; $c"
    say "disk ($(df -P $G | awk 'NR == 2 { print $1 }'), $(free_gb) GB free): $DD_RESULT"
}

sec_ckpt7b() {
    if [ "$(ngpus)" -lt 2 ]; then
        say "ckpt7b: SKIP: needs 2 GPUs (2 x H200), this machine has $(ngpus)"
        return 0
    fi
    setup || return 1
    sec_disk
    # Gemma-7B: 8.54e9 parameters x (2 bytes BF16 weights + 12 bytes FP32 masters and moments) = 120 GB.
    local mc=configs/hf/gemma-7b layers=28 free
    free=$(free_gb)
    if [ "$free" -lt 126 ]; then
        # fewer layers, same tensor shapes: ~3.9 GB per layer, ~11 GB embedding, 5 GB spare
        layers=$(((free - 16) * 10 / 39))
        [ $layers -gt 28 ] && layers=28
        [ $layers -lt 2 ] && { say "ckpt7b: FAIL: $free GB free disk is too little"; return 1; }
        echo "ckpt7b: only $free GB free: Gemma-7B shapes with $layers of 28 layers"
    fi
    # CKPT7B_LAYERS: fewer layers still (a shorter run; the bandwidth is what is measured)
    [ -n "${CKPT7B_LAYERS:-}" ] && [ "$CKPT7B_LAYERS" -lt $layers ] && layers=$CKPT7B_LAYERS
    if [ $layers -lt 28 ]; then
        mc=$G/gemma-7b-L$layers
        layers_config configs/hf/gemma-7b $layers $mc
    fi
    rm -rf $G/ckpt7b
    train_run ckpt7b 2 --config configs/gemma-7b-tp2.yaml --run-dir $G/ckpt7b --set "model.config=$mc" \
        --set "data.train=[$TRAIN]" --set "data.val=[]" --set train.eval_every=0 --set data.seq_len=2048 \
        --set data.micro_batch=2 --set data.grad_accum=1 \
        --set train.steps=2 --set optim.warmup_steps=0 --set checkpoint.every=0 --set checkpoint.keep=1 \
        --set train.save_final=false --set train.log_every=1
    local rc=$? line dir secs bytes
    line=$(ckpt_line $G/logs/ckpt7b.log)
    dir=$(echo "$line" | sed -n 's/^checkpoint: \(.*\) (\([0-9.]*\) s)$/\1/p')
    secs=$(echo "$line" | sed -n 's/^checkpoint: \(.*\) (\([0-9.]*\) s)$/\2/p')
    if [ $rc -ne 0 ] || [ -z "$dir" ] || [ ! -d "$dir" ]; then
        say "ckpt7b: FAIL: run exit $rc, no checkpoint line (log: $G/logs/ckpt7b.log)"
        return 1
    fi
    bytes=$(du -sb "$dir" | cut -f1)
    say "ckpt7b: Gemma-7B ($layers layers) tp=2 checkpoint: $(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f GB written in %s s = %.2f GB/s", b / 1e9, s, b / 1e9 / s }') (the trainer's own timing, train/trainer_ckpt.c gt_trainer_checkpoint: headers, parallel pwrite of both ranks, fsyncs, rename; files: $(ls "$dir" | tr '\n' ' '))" \
        "ckpt7b: disk: $DD_RESULT"
    rm -rf $G/ckpt7b/checkpoint-*
}

# ---------------------------------------------------------------------------------------------- main
if [ $# -eq 0 ]; then
    sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
fi
mkdir -p $G/logs $G/plots $G/data
status=0
for s in "$@"; do
    echo "########## $s ($(date -u +%H:%M:%S))"
    t0=$SECONDS
    case $s in
    setup) setup && hf_init ;;
    1gpu) sec_1gpu ;;
    tp2) sec_tp2 bf16 ;;
    tp2-fp8) sec_tp2 fp8 ;;
    resume) sec_resume_one bf16; sec_resume_one fp8 ;;
    resume-bf16) sec_resume_one bf16 ;;
    resume-fp8) sec_resume_one fp8 ;;
    export) sec_export ;;
    states) sec_states ;;
    7b1gpu) sec_7b1gpu ;;
    ckpt7b) sec_ckpt7b ;;
    disk) sec_disk ;;
    *) echo "unknown section '$s' (setup 1gpu states tp2 tp2-fp8 resume resume-bf16 resume-fp8 export 7b1gpu ckpt7b disk)"; exit 2 ;;
    esac
    rc=$?
    [ $rc -ne 0 ] && status=$rc && say "$s: section ended with status $rc"
    echo "########## $s: $((SECONDS - t0)) s"
done
keep $G/summary.txt summary.txt
echo "=== summary lines of this machine (runs/gpu/summary.txt):"
cat $G/summary.txt
exit $status
