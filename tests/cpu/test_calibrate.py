"""`gemmatron calibrate` and training from its directory, end to end on the CPU (argv[1] = the
binary; the CPU backend emulates E4M3/E5M2 exactly), on the bundled tiny model and demo data:
  - calibrate writes an HF directory plus fp8_state.safetensors: the checkpoint's FP8 tensors with
    the documented shapes, calibration.steps, and scales that follow TE's recipe from the saved
    histories (scale = fp8_max / max over the history, margin 0); `inspect` shows the state;
  - `train` with FP8 from the calibrated directory loads the state (one line) and runs no
    calibration: its step 1 is bitwise that of a run from the same weights that calibrates on the
    same batches itself (loss, updated weights, FP8 state), and its amax history after the step is
    the saved one rolled by one slot; a state with other scales gives other weights (the saved
    scales are the ones used);
  - another history length or lm_head setting is one clear error; bad calibrate options exit 2."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

FAILS = []
TRAIN = ["--config", "configs/tiny-cpu.yaml", "--set", "optim.warmup_steps=0", "--set", "data.seq_len=64",
         "--set", "data.micro_batch=2", "--set", "data.grad_accum=1", "--set", "data.shuffle=false",
         "--set", "train.eval_every=0", "--set", "data.val=[]", "--set", "train.log_every=1"]
FP8 = ["--set", "fp8.enabled=true", "--set", "fp8.history_len=4", "--set", "train.steps=1",
       "--set", "train.save_final=false", "--set", "checkpoint.every=1"]
STEPS = 3


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILS.append(what)


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=300)


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack_from("<Q", b)[0]
    header = json.loads(b[8:8 + n])
    dtypes = {"F32": np.float32, "I32": np.int32, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name != "__metadata__":
            lo, hi = t["data_offsets"]
            out[name] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def ckpt_file(run_dir, name):
    with open(os.path.join(run_dir, "checkpoint-000001", name), "rb") as f:
        return f.read()


def loss(run_dir):
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        return f["train/loss"][:]


def test_calibrate(binary, tmp):
    p = run(binary, "train", *TRAIN, "--run-dir", f"{tmp}/base", "--set", "train.steps=1")
    check(p.returncode == 0, f"a base HF model (1 BF16 step of the tiny demo): exit {p.returncode} {p.stderr[-300:]}")
    cal = f"{tmp}/cal"
    p = run(binary, "calibrate", "--model", f"{tmp}/base/final", "--data", "data/demo/train.bin", "--out", cal,
            "--steps", str(STEPS), "--seq-len", "64", "--micro-batch", "2", "--device", "cpu",
            "--set", "fp8.history_len=4")
    check(p.returncode == 0 and "calibrated model: " + cal in p.stdout, f"calibrate: exit {p.returncode} {p.stderr[-300:]}")
    files = sorted(os.listdir(cal))
    check(files == ["config.json", "fp8_state.safetensors", "generation_config.json", "model.safetensors"],
          f"the calibrated directory: an HF model plus fp8_state.safetensors ({files})")
    st = read_safetensors(f"{cal}/fp8_state.safetensors")
    fp8_max = np.array([448.0] * 16 + [57344.0] * 8, dtype=np.float32)
    h = st["amax_history"]
    check(h.shape == (4, 24) and st["scale"].shape == (24,) and np.array_equal(st["fp8_max"], fp8_max) and
          st["recipe.amax_compute_algo"][0] == 0 and st["recipe.margin"][0] == 0 and
          st["calibration.steps"][0] == STEPS, "fp8_state.safetensors: [4, 24] history, fp8_max, recipe, "
          f"calibration.steps {st['calibration.steps']}")
    # 3 updates of a 4-slot history: slot 0 reset, slots 1..3 the three calibration amaxes (> 0)
    want = fp8_max / h.max(axis=0)
    check(np.all(h[0] == 0) and np.all(h[1:] > 0) and np.allclose(st["scale"], want, rtol=1e-6) and
          np.allclose(st["scale_inv"], 1 / st["scale"], rtol=1e-6),
          "the saved scales are fp8_max / max(history) (TE's recipe on the recorded amaxes)")
    p = run(binary, "inspect", cal)
    check(p.returncode == 0 and "fp8 state: 24 tensors" in p.stdout and f"calibrated on {STEPS} step(s)" in p.stdout
          and "fp8 amax:" in p.stdout, "inspect shows the FP8 state, its amax range and the calibration steps")
    return cal, st


def test_train_from(binary, tmp, cal, st):
    # The same weights without the state: that run calibrates on the same first batches itself.
    plain = f"{tmp}/plain"
    os.mkdir(plain)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(f"{cal}/{name}", plain)
    b = run(binary, "train", *TRAIN, *FP8, "--run-dir", f"{tmp}/B", "--set", f"model.path={cal}")
    a = run(binary, "train", *TRAIN, *FP8, "--run-dir", f"{tmp}/A", "--set", f"model.path={plain}",
            "--set", f"fp8.calibration_steps={STEPS}")
    check(b.returncode == 0 and a.returncode == 0, f"train from both: exit {b.returncode} {a.returncode}")
    check(f"fp8: state loaded from {cal}/fp8_state.safetensors (24 tensors, amax history 4, calibrated on {STEPS} "
          "step(s) of batches): no calibration steps" in b.stdout and "scales calibrated" not in b.stdout,
          "train from the calibrated directory loads the state and runs no calibration (one line)")
    check(np.array_equal(loss(f"{tmp}/A"), loss(f"{tmp}/B")), "step 1's loss is bitwise that of train's own calibration")
    check(ckpt_file(f"{tmp}/A", "model.safetensors") == ckpt_file(f"{tmp}/B", "model.safetensors") and
          ckpt_file(f"{tmp}/A", "fp8_state.safetensors") == ckpt_file(f"{tmp}/B", "fp8_state.safetensors"),
          "the weights and FP8 state after step 1 are byte for byte those of train's own calibration")
    after = read_safetensors(f"{tmp}/B/checkpoint-000001/fp8_state.safetensors")["amax_history"]
    check(np.array_equal(after[1:3].view(np.uint32), st["amax_history"][2:4].view(np.uint32)) and np.all(after[3] > 0),
          "the history after step 1 is the saved one rolled by a slot, bitwise (the step started from the state file)")
    # Control: the same directory with every scale doubled must train to other weights.
    other = f"{tmp}/other"
    shutil.copytree(cal, other)
    raw = bytearray(open(f"{cal}/fp8_state.safetensors", "rb").read())
    n = struct.unpack_from("<Q", raw)[0]
    hdr = json.loads(raw[8:8 + n])
    for name, f in (("scale", 2.0), ("scale_inv", 0.5)):
        lo, hi = hdr[name]["data_offsets"]
        v = np.frombuffer(bytes(raw[8 + n + lo:8 + n + hi]), dtype=np.float32) * np.float32(f)
        raw[8 + n + lo:8 + n + hi] = v.tobytes()
    open(f"{other}/fp8_state.safetensors", "wb").write(bytes(raw))
    c = run(binary, "train", *TRAIN, *FP8, "--run-dir", f"{tmp}/C", "--set", f"model.path={other}")
    check(c.returncode == 0 and ckpt_file(f"{tmp}/C", "model.safetensors") != ckpt_file(f"{tmp}/B", "model.safetensors"),
          "control: doubled saved scales give other weights after step 1 (the test can fail)")
    return plain


def test_errors(binary, tmp, cal):
    p = run(binary, "train", *TRAIN, *FP8, "--run-dir", f"{tmp}/E1", "--set", f"model.path={cal}",
            "--set", "fp8.history_len=8")
    check(p.returncode == 1 and "fp8.history_len: 8, but " in p.stderr and "length 4" in p.stderr,
          f"another history length is one clear error: {p.stderr.strip()[-200:]}")
    p = run(binary, "train", *TRAIN, *FP8, "--run-dir", f"{tmp}/E2", "--set", f"model.path={cal}",
            "--set", "fp8.lm_head=true")
    check(p.returncode == 1 and "fp8.lm_head: true, but " in p.stderr, f"another lm_head setting: {p.stderr.strip()[-200:]}")
    base = ["calibrate", "--model", cal, "--data", "data/demo/train.bin"]
    for args, code, what in (([], 2, "--out"), (["--out", f"{tmp}/x", "--steps", "0"], 2, "--steps"),
                             (["--out", f"{tmp}/x", "--bogus"], 2, "--bogus"),
                             (["--out", f"{tmp}/x", "--set", "optim.lr=1"], 1, "FP8 recipe keys only")):
        p = run(binary, *base, *args)
        check(p.returncode == code and what in p.stderr, f"calibrate {' '.join(args)}: exit {p.returncode} (want {code})")
    p = run(binary, "calibrate", "--help")
    check(p.returncode == 0 and "--steps N" in p.stdout and "fp8_state.safetensors" in p.stdout, "calibrate --help")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt_calibrate_")
    try:
        cal, st = test_calibrate(binary, tmp)
        test_train_from(binary, tmp, cal, st)
        test_errors(binary, tmp, cal)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILS)} failure(s)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
