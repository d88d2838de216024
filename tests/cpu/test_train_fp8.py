"""`gemmatron train` with FP8 GEMMs, end to end on the CPU (argv[1] = the binary; the CPU backend
emulates E4M3/E5M2 exactly), on the bundled tiny model and data:
  - the tiny demo trains with fp8.enabled=true: calibration runs first, the loss starts at ln(259)
    and falls, and follows the BF16 run of the same config within 2%;
  - metrics.h5 /fp8: step, amax, scale with the documented shapes, dtypes and tensor names; every
    scale is fp8_max / (an amax >= the newest one); the last row is the checkpoint's state;
  - fp8_state.safetensors and trainer_state.json describe the state; `gemmatron inspect` shows its
    tensor count, history length and the smallest and largest scale;
  - bitwise resume in FP8 (evaluations between the steps included): losses, evaluation losses,
    /fp8 rows and the final FP8 state of a run resumed from its step-4 checkpoint are those of the
    uninterrupted run; also after a SIGKILL in the middle of writing fp8_state.safetensors (the
    metrics file left open is recovered, /fp8 rows included);
  - a BF16 checkpoint resumed with FP8 starts from fresh, calibrated scales; an FP8 checkpoint
    resumed without FP8 ignores the state with a note; another history length is one clear error;
  - config errors of the fp8 keys on the command line;
  - scripts/plot_metrics.py draws the FP8 panels (when matplotlib is installed)."""
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

FAILS, PASSED = [], []
SMALL = ["--set", "data.seq_len=64", "--set", "data.micro_batch=2", "--set", "data.grad_accum=2",
         "--set", "optim.warmup_steps=2", "--set", "train.eval_every=0", "--set", "train.eval_steps=2",
         "--set", "train.log_every=1", "--set", "train.save_final=false"]
FP8 = ["--set", "fp8.enabled=true"]
# The resume runs: FP8 with a short history, one calibration step, an /fp8 row and an evaluation
# every other step, so that the checkpoint at step 4 follows an evaluation.
RESUME = FP8 + ["--set", "fp8.history_len=4", "--set", "fp8.calibration_steps=1", "--set", "fp8.log_every=1",
                "--set", "train.eval_every=2", "--set", "checkpoint.every=4", "--set", "train.steps=8"]
NAMES = [f"layers.{l}.{g}.{o}" for l in range(2) for g in ("qkv", "o_proj", "fc1", "fc2") for o in ("input", "weight")]
NAMES += [f"layers.{l}.{g}.grad_output" for l in range(2) for g in ("qkv", "o_proj", "fc1", "fc2")]
FP8_MAX = np.array([448.0] * 16 + [57344.0] * 8, dtype=np.float32)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def train(binary, run_dir, *extra, env=None):
    cmd = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run_dir, *SMALL, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def metrics(run_dir):
    """train/loss, eval/loss, fp8/step, fp8/amax, fp8/scale (None where /fp8 is empty)."""
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        fp8 = [f["fp8"][k][:] if k in f["fp8"] else None for k in ("step", "amax", "scale")]
        return [f["train/loss"][:], f["eval/loss"][:], *fp8]


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack_from("<Q", b)[0]
    header = json.loads(b[8:8 + n])
    dtypes = {"F32": np.float32, "I32": np.int32}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def trainer_state(ck):
    with open(os.path.join(ck, "trainer_state.json")) as f:
        return json.load(f)


def latest(run_dir):
    with open(os.path.join(run_dir, "latest")) as f:
        return f.read().strip()


def test_train(binary, tmp):
    run, ref = os.path.join(tmp, "fp8"), os.path.join(tmp, "bf16")
    common = ["--set", "train.steps=20", "--set", "checkpoint.every=20"]
    p = train(binary, run, *common, *FP8, "--set", "fp8.history_len=16", "--set", "fp8.calibration_steps=2",
              "--set", "fp8.log_every=5")
    check(p.returncode == 0 and "fp8: scales calibrated on the batches of 2 step(s)" in p.stdout and
          "delayed scaling of 24 tensors: history 16, algo max" in p.stdout,
          f"FP8 tiny demo runs, calibration first ({p.stderr.strip()[-300:]})")
    if p.returncode:
        return None
    q = train(binary, ref, *common)
    loss, _, step, amax, scale = metrics(run)
    bf16 = metrics(ref)[0]
    first, tail, tail16 = loss[0], loss[-5:].mean(), bf16[-5:].mean()
    check(abs(first - math.log(259)) < 0.1 and tail < first - 1.5,
          f"FP8 loss starts at ln(259) and falls: {first:.3f} -> {tail:.3f} (mean of the last 5)")
    check(q.returncode == 0 and abs(tail - tail16) < 0.02 * tail16 and not np.array_equal(loss, bf16),
          f"FP8 follows BF16 within 2% ({tail:.4f} vs {tail16:.4f}) and is not BF16")

    with h5py.File(os.path.join(run, "metrics.h5"), "r") as f:
        g = f["fp8"]
        check(sorted(g.keys()) == ["amax", "scale", "step"] and g["amax"].shape == (4, 24) and
              g["scale"].shape == (4, 24) and g["amax"].dtype == np.float32 and g["step"].dtype == np.int64 and
              g["amax"].maxshape == (None, 24) and g["amax"].chunks is not None,
              f"/fp8: step [4], amax and scale [4, 24] float32, extendible, chunked ({g['amax'].shape})")
        names = [x.decode() if isinstance(x, bytes) else x for x in g.attrs["tensors"]]
        check(names == NAMES and g.attrs["history_len"] == 16 and g.attrs["algo"] == "max" and g.attrs["margin"] == 0,
              f"/fp8 attributes: tensors {names[0]} ... {names[-1]}, history_len, algo, margin")
    check(list(step) == [5, 10, 15, 20], f"/fp8/step every fp8.log_every=5 steps: {list(step)}")
    check(bool(np.all(np.isfinite(scale)) and np.all(scale > 0) and np.all(amax > 0)),
          "every amax and scale finite and positive")
    check(bool(np.all(scale * amax <= FP8_MAX * (1 + 1e-6))) and bool(np.any(scale * amax > 0.999 * FP8_MAX)),
          "scale = fp8_max / (the window's max amax >= the newest amax), reached for some tensor")

    ck = os.path.join(run, "checkpoint-000020")
    st = read_safetensors(os.path.join(ck, "fp8_state.safetensors"))
    check(st["amax_history"].shape == (16, 24) and np.array_equal(st["scale"], scale[-1]) and
          np.array_equal(st["amax_history"][15], amax[-1]) and np.array_equal(st["fp8_max"], FP8_MAX) and
          np.array_equal(st["scale_inv"], np.float32(1) / st["scale"]) and st["recipe.amax_compute_algo"][0] == 0,
          "fp8_state.safetensors: the last /fp8 row's scales and newest amaxes, fp8_max, scale_inv = 1/scale")
    check(trainer_state(ck)["fp8"] == {"file": "fp8_state.safetensors", "tensors": 24, "history_len": 16,
                                        "algo": "max", "margin": 0.0}, "trainer_state.json describes the FP8 state")
    ins = subprocess.run([binary, "inspect", ck], capture_output=True, text=True)
    s = st["scale"]
    lo, hi = f"min {float(s.min()):.6g} ({NAMES[int(s.argmin())]})", f"max {float(s.max()):.6g} ({NAMES[int(s.argmax())]})"
    check(ins.returncode == 0 and "fp8 state: 24 tensors" in ins.stdout and "amax history length 16" in ins.stdout and
          lo in ins.stdout and hi in ins.stdout, f"inspect shows the FP8 state: {lo}, {hi}")
    return run


def test_resume(binary, tmp):
    ref, res = os.path.join(tmp, "ref"), os.path.join(tmp, "res")
    p = train(binary, ref, *RESUME)
    check(p.returncode == 0 and latest(ref) == "checkpoint-000008", f"FP8 reference run of 8 steps ({p.stderr.strip()})")
    want = metrics(ref)
    shutil.copytree(ref, res)
    shutil.rmtree(os.path.join(res, "checkpoint-000008"))
    os.remove(os.path.join(res, "latest"))
    p = subprocess.run([binary, "train", "--resume", res], capture_output=True, text=True, timeout=600)
    got = metrics(res)
    check(p.returncode == 0 and "fp8: state restored from" in p.stdout and "calibrated" not in p.stdout,
          "the resume restores the FP8 state and does not calibrate")
    check(all(np.array_equal(a, b) for a, b in zip(got, want)) and len(got[2]) == 8,
          f"resumed from step 4: losses, eval losses, /fp8 steps, amaxes and scales bitwise equal ({got[0][-1]!r})")
    a = open(os.path.join(ref, "checkpoint-000008", "fp8_state.safetensors"), "rb").read()
    b = open(os.path.join(res, "checkpoint-000008", "fp8_state.safetensors"), "rb").read()
    check(a == b, "the final fp8_state.safetensors is byte for byte the uninterrupted run's")
    return ref, want


def build_shim(tmp):
    so = os.path.join(tmp, "fault.so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", so, "tests/cpu/fault_inject.c", "-ldl"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("cannot build the fault shim: " + r.stderr)
    return so


def test_kill(binary, tmp, want):
    run = os.path.join(tmp, "kill")
    env = dict(os.environ, LD_PRELOAD=build_shim(tmp), GT_FAULT="kill",
               GT_FAULT_PATH="checkpoint-000008.tmp/fp8_state.safetensors")
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    p = train(binary, run, *RESUME, env=env)
    check(p.returncode == -signal.SIGKILL and latest(run) == "checkpoint-000004",
          f"SIGKILL while writing fp8_state.safetensors of checkpoint 8: checkpoint 4 is latest (exit {p.returncode})")
    p = train(binary, run, *RESUME)
    got = metrics(run)
    check(p.returncode == 0 and "resumed from " + os.path.join(run, "checkpoint-000004") in p.stdout and
          "left open by a process that died" in p.stderr and all(np.array_equal(a, b) for a, b in zip(got, want)),
          f"the same command again resumes, recovers metrics.h5 (/fp8 rows too), ends bitwise as uninterrupted "
          f"({p.stderr.strip()[:200]})")


def test_mixed(binary, tmp, ref):
    bf = os.path.join(tmp, "bf16-then-fp8")
    p = train(binary, bf, "--set", "train.steps=4", "--set", "checkpoint.every=4")
    p = train(binary, bf, "--set", "train.steps=6", *FP8, "--set", "fp8.calibration_steps=1", "--set", "fp8.log_every=1")
    ck6 = os.path.join(bf, "checkpoint-000006")
    step = metrics(bf)[2]
    check(p.returncode == 0 and "holds no FP8 state: FP8 starts from fresh scales" in p.stdout and
          "fp8: scales calibrated" in p.stdout and os.path.exists(os.path.join(ck6, "fp8_state.safetensors")) and
          step is not None and list(step) == [5, 6],
          f"a BF16 checkpoint resumed with FP8: fresh scales, calibrated, FP8 state saved, /fp8 rows {step}")

    off = os.path.join(tmp, "fp8-then-bf16")
    shutil.copytree(ref, off)
    shutil.rmtree(os.path.join(off, "checkpoint-000008"))
    os.remove(os.path.join(off, "latest"))
    p = train(binary, off, "--set", "train.steps=6", "--set", "checkpoint.every=6")
    ck6 = os.path.join(off, "checkpoint-000006")
    step = metrics(off)[2]
    check(p.returncode == 0 and "holds FP8 state (fp8_state.safetensors); fp8.enabled is false, so it is ignored"
          in p.stdout and not os.path.exists(os.path.join(ck6, "fp8_state.safetensors")) and
          trainer_state(ck6)["fp8"] is None and list(step) == [1, 2, 3, 4],
          f"an FP8 checkpoint resumed without FP8: ignored with a note, no FP8 state saved, /fp8 keeps steps 1-4 "
          f"({p.stderr.strip()})")

    p = train(binary, ref, *RESUME, "--set", "fp8.history_len=8", "--set", "train.steps=10")
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 1 and len(lines) == 1 and "fp8.history_len: 8" in lines[0] and "length 4" in lines[0],
          f"another history length: one line naming both ({p.stderr.strip()})")


def test_cli_errors(binary, tmp):
    for args, key in [(["--set", "fp8.algo=mean"], "fp8.algo"), (["--set", "fp8.history_len=0"], "fp8.history_len"),
                      (["--set", "fp8.margin=-1"], "fp8.margin"), (["--set", "fp8.calibration_steps=x"],
                                                                     "fp8.calibration_steps"),
                      (["--set", "fp8.log_every=-5"], "fp8.log_every"), (["--set", "fp8.enable=true"], "fp8.enable")]:
        run = os.path.join(tmp, "never")
        p = train(binary, run, *args)
        lines = p.stderr.strip().splitlines()
        check(p.returncode == 1 and len(lines) == 1 and key in lines[0] and not os.path.exists(run),
              f"{' '.join(args)} -> exit {p.returncode}: {p.stderr.strip()}")


def test_plot(run):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("skip plot_metrics.py: matplotlib is not installed (an optional dependency)")
        return
    png = os.path.join(run, "plot.png")
    p = subprocess.run([sys.executable, "scripts/plot_metrics.py", os.path.join(run, "metrics.h5"), "-o", png],
                       capture_output=True, text=True)
    ok = p.returncode == 0 and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and "FP8 amax/scale of 24 tensors" in p.stdout
    check(ok, f"plot_metrics.py renders the FP8 panels ({p.stdout.strip()}{p.stderr.strip()})")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt-fp8-")
    try:
        run = test_train(binary, tmp)
        ref, want = test_resume(binary, tmp)
        test_kill(binary, tmp, want)
        test_mixed(binary, tmp, ref)
        test_cli_errors(binary, tmp)
        if run:
            test_plot(run)
    finally:
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"train_fp8: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
