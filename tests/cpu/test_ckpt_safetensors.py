"""Checkpoints and exports read back by the Python `safetensors` package (argv[1] = the binary):
  - `gemmatron export` of every HF fixture (load -> export round trip), as fp32, bf16 and sharded:
    every tensor has the fixture's name and shape, fp32 values are the fixture's exactly, bf16
    values are their round-to-nearest-even bf16; the index (when sharded) matches the files;
    config.json and generation_config.json are those of an HF Gemma model;
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


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="gt-st-")
    try:
        test_exports(binary, tmp)
    finally:
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"ckpt_safetensors: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
