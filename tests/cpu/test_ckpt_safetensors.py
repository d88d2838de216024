"""Checkpoints and exports read back by the Python `safetensors` package (argv[1] = the binary):
  - `gemmatron export` of every HF fixture (load -> export round trip), as fp32, bf16 and sharded:
    every tensor has the fixture's name and shape, fp32 values are the fixture's exactly, bf16
    values are their round-to-nearest-even bf16; the index (when sharded) matches the files;
    config.json and generation_config.json are those of an HF Gemma model;
  - export errors (an existing output directory, a missing source: exit 1; a wrong dtype, a missing
    --out: exit 2, a bad command line): one line;
  - a training checkpoint (gemmatron train with checkpoint.every): model.safetensors holds every HF
    tensor in bf16, exactly the rounding of optimizer.safetensors' NAME.master (F32), which also has
    NAME.exp_avg and NAME.exp_avg_sq of the same shape (exp_avg_sq >= 0); trainer_state.json lists
    the files with their sizes; the fp32 export of the checkpoint is the master weights exactly.
numpy has no bfloat16: BF16 tensors are taken from safetensors.deserialize as raw bytes and widened
here (a bf16 is the top half of a float32)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import safetensors
from safetensors import safe_open

FAILS, PASSED = [], []
FIXTURES = ["mha", "mqa", "gqa", "bf16", "f16", "conflict", "sharded"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def model_files(d):
    """The model's safetensors files of an HF directory, as transformers finds them."""
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return [os.path.join(d, "model.safetensors")]
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        index = json.load(f)
    return sorted({os.path.join(d, v) for v in index["weight_map"].values()})


def to_f32(dtype, shape, data):
    if dtype == "F32":
        a = np.frombuffer(data, dtype="<f4")
    elif dtype == "F16":
        a = np.frombuffer(data, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F64":
        a = np.frombuffer(data, dtype="<f8").astype(np.float32)
    else:
        raise ValueError("unexpected dtype " + dtype)
    return a.reshape(shape)


def read_file(path):
    """{name: (dtype, shape, float32 array)} of one file, through the safetensors package."""
    with open(path, "rb") as f:
        raw = safetensors.deserialize(f.read())
    out = {name: (t["dtype"], list(t["shape"]), to_f32(t["dtype"], t["shape"], bytes(t["data"]))) for name, t in raw}
    with safe_open(path, framework="numpy") as f:  # the package's own header view agrees
        for name in f.keys():
            sl = f.get_slice(name)
            assert list(sl.get_shape()) == out[name][1] and sl.get_dtype() == out[name][0], name
            if out[name][0] in ("F32", "F16"):
                assert np.array_equal(f.get_tensor(name).astype(np.float32), out[name][2]), name
    return out


def read_dir(d):
    out = {}
    for p in model_files(d):
        out.update(read_file(p))
    return out


def bf16_round(a):
    """float32 -> the float32 value of its nearest-even bf16 (no NaN in these tensors)."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


def export(binary, src, out, *extra):
    r = subprocess.run([binary, "export", "--checkpoint", src, "--out", out, *extra], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
    return r.returncode == 0


def check_hf_dir(d, dtype_name, what):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(d, "generation_config.json")) as f:
        gen = json.load(f)
    check(cfg["model_type"] == "gemma" and cfg["architectures"] == ["GemmaForCausalLM"] and
          cfg["torch_dtype"] == dtype_name and cfg["dtype"] == dtype_name and "bos_token_id" in gen,
          f"{what}: config.json / generation_config.json of an HF Gemma model in {dtype_name}")


def check_index(d, what):
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        index = json.load(f)
    files = model_files(d)
    listed = {}
    total = 0
    for p in files:
        for name, (dt, shape, a) in read_file(p).items():
            listed[name] = os.path.basename(p)
            total += a.size * (2 if dt == "BF16" else 4)
    check(len(files) > 1 and listed == index["weight_map"] and index["metadata"]["total_size"] == total,
          f"{what}: {len(files)} shards, index weight_map and total_size match the files")


def test_exports(binary, tmp):
    for fx in FIXTURES:
        src = os.path.join("tests", "fixtures", fx)
        want = read_dir(src)
        for dt, extra in (("F32", ["--dtype", "fp32"]), ("BF16", ["--dtype", "bf16"]),
                          ("F32", ["--dtype", "fp32", "--max-shard-size", "60KB"])):
            out = os.path.join(tmp, f"{fx}-{dt}-{len(extra)}")
            if not export(binary, src, out, *extra):
                check(False, f"export {fx} {extra}")
                continue
            got = read_dir(out)
            names_ok = set(got) == set(want) and all(got[n][1] == want[n][1] for n in want)
            vals_ok = names_ok and all(
                got[n][0] == dt and np.array_equal(got[n][2], want[n][2] if dt == "F32" else bf16_round(want[n][2]))
                for n in want)
            check(names_ok, f"export {fx} {' '.join(extra)}: {len(got)} tensors, the fixture's names and shapes")
            check(vals_ok, f"export {fx} {' '.join(extra)}: values {'exact' if dt == 'F32' else 'bf16-rounded'}")
            check_hf_dir(out, "float32" if dt == "F32" else "bfloat16", f"export {fx} {dt}")
            if len(extra) > 2:
                check_index(out, f"export {fx} sharded")


def test_export_errors(binary, tmp):
    out = os.path.join(tmp, "exists")
    os.makedirs(out)
    # Exit 1: the export cannot be done; exit 2: the command line is wrong (train/cmd/cli.h).
    cases = [(["--checkpoint", "tests/fixtures/gqa", "--out", out], "already exists", 1),
             (["--checkpoint", os.path.join(tmp, "nothing"), "--out", os.path.join(tmp, "x")], "config.json: cannot open", 1),
             (["--checkpoint", "tests/fixtures/gqa", "--out", os.path.join(tmp, "y"), "--dtype", "int8"],
              "--dtype int8: expected bf16 or fp32", 2),
             (["--checkpoint", "tests/fixtures/gqa"], "--out HF_DIR is required", 2)]
    for args, want, status in cases:
        r = subprocess.run([binary, "export", *args], capture_output=True, text=True)
        check(r.returncode == status and want in r.stderr and len(r.stderr.strip().splitlines()) == 1 and
              not os.path.exists(os.path.join(tmp, "x")) and not os.path.exists(os.path.join(tmp, "y")),
              f"export {' '.join(args[-2:])}: exit {status}, one line: {r.stderr.strip()}")


def hf_names(cfg):
    layer = ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
             "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    names = {"model.embed_tokens.weight", "model.norm.weight"}
    for i in range(cfg["num_hidden_layers"]):
        names |= {f"model.layers.{i}.{x}.weight" for x in layer}
    return names


def check_checkpoint(binary, ck, tmp, what):
    """A training checkpoint read with safetensors: names, dtypes, shapes, weights = bf16(master),
    moments, trainer_state.json file sizes, and gemmatron's exports of it."""
    with open(os.path.join(ck, "config.json")) as f:
        names = hf_names(json.load(f))
    weights = read_dir(ck)
    opt = read_file(os.path.join(ck, "optimizer.safetensors"))
    check(set(weights) == names and all(w[0] == "BF16" for w in weights.values()),
          f"{what}: model weights: the {len(names)} HF names, BF16")
    want_opt = {n + s for n in names for s in (".master", ".exp_avg", ".exp_avg_sq")}
    check(set(opt) == want_opt and all(t[0] == "F32" for t in opt.values()) and
          all(opt[n + s][1] == weights[n][1] for n in names for s in (".master", ".exp_avg", ".exp_avg_sq")),
          f"{what}: optimizer.safetensors: master, exp_avg, exp_avg_sq of every tensor, F32, same shapes")
    check(all(np.array_equal(weights[n][2], bf16_round(opt[n + ".master"][2])) for n in names),
          f"{what}: every BF16 weight is the rounding of its FP32 master weight")
    check(all((opt[n + ".exp_avg_sq"][2] >= 0).all() and np.isfinite(opt[n + ".exp_avg"][2]).all() for n in names)
          and any(np.abs(opt[n + ".exp_avg"][2]).max() > 0 for n in names),
          f"{what}: moments finite, exp_avg_sq >= 0, not all zero")
    with open(os.path.join(ck, "trainer_state.json")) as f:
        state = json.load(f)
    check(all(os.path.getsize(os.path.join(ck, x["name"])) == x["bytes"] for x in state["files"]) and
          {x["name"] for x in state["files"]} == {os.path.basename(p) for p in model_files(ck)} |
          {"optimizer.safetensors"}, f"{what}: trainer_state.json lists every file with its size")
    out32, out16 = os.path.join(tmp, what + "-fp32"), os.path.join(tmp, what + "-default")
    ok = export(binary, ck, out32, "--dtype", "fp32") and export(binary, ck, out16)
    e32, e16 = (read_dir(out32), read_dir(out16)) if ok else ({}, {})
    check(ok and all(np.array_equal(e32[n][2], opt[n + ".master"][2]) and e32[n][0] == "F32" for n in names),
          f"{what}: export --dtype fp32 = the master weights exactly")
    check(ok and all(np.array_equal(e16[n][2], weights[n][2]) and e16[n][0] == "BF16" for n in names),
          f"{what}: export (default: the checkpoint's BF16) = the checkpoint's weights")
    check_hf_dir(out16, "bfloat16", f"{what} export")


def test_training_checkpoint(binary, tmp):
    run = os.path.join(tmp, "run")
    cmd = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, "--set", "data.seq_len=64",
           "--set", "data.micro_batch=2", "--set", "data.grad_accum=1", "--set", "train.steps=3", "--set",
           "train.eval_every=0", "--set", "checkpoint.every=2", "--set", "checkpoint.max_shard_bytes=40000",
           "--set", "train.quiet=true", "--set", "train.save_final=false", "--set", "optim.warmup_steps=1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        check(False, "train: " + r.stderr.strip())
        return
    check(r.returncode == 0 and sorted(x for x in os.listdir(run) if x.startswith("checkpoint")) ==
          ["checkpoint-000002", "checkpoint-000003"], f"train 3 steps, checkpoint.every=2: checkpoints 2 and 3 "
          f"({r.stderr.strip()})")
    for step in (2, 3):
        ck = os.path.join(run, "checkpoint-%06d" % step)
        check_index(ck, f"checkpoint {step}")
        check_checkpoint(binary, ck, tmp, f"checkpoint-{step}")


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="gt-st-")
    try:
        test_exports(binary, tmp)
        test_export_errors(binary, tmp)
        test_training_checkpoint(binary, tmp)
    finally:
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"ckpt_safetensors: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
