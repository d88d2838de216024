"""`gemmatron calibrate` under mpirun on the CPU (argv[1] = the binary; run by
tests/mpi/test_mpi_calibrate.sh), tiny model with a vocabulary of 260 (as tests/mpi/mpi_ckpt_resume.py):
  - calibrate at tp=2 (mpirun -np 2) writes one FP8 state, that of one process within float rounding
    (the amax of every tensor is MAX-reduced over the ranks that hold its pieces);
  - train at tp=2 from the tp=2 calibrated directory loads the state and skips calibration, and its
    step 1 is byte for byte that of a tp=2 run calibrating on the same batches itself (weights and
    FP8 state of the step-1 checkpoint); its history is the saved one rolled by a slot, bitwise."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cpu"))
import mpi_ckpt_resume as base  # noqa: E402  (its tiny-260 setup and SMALL settings)
import test_calibrate as cal  # noqa: E402  (its safetensors reader)

MPI = base.MPI
FP8 = ["--set", "fp8.enabled=true", "--set", "fp8.history_len=4", "--set", "train.steps=1", "--set", "optim.warmup_steps=0",
       "--set", "checkpoint.every=1", "--set", "data.shuffle=false"]
STEPS = 3


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt_mpi_calibrate_")
    check = base.check
    try:
        base.even_vocab(tmp)
        shard = os.path.join(tmp, "tiny260", "train.bin")
        p = base.train(binary, f"{tmp}/base", "--set", "train.steps=1", "--set", "optim.warmup_steps=0",
                       "--set", "train.save_final=true", mpi=False)
        check(p.returncode == 0, f"a base HF model of vocabulary 260 ({p.stderr.strip()[-200:]})")
        calib = ["calibrate", "--model", f"{tmp}/base/final", "--data", shard, "--steps", str(STEPS), "--seq-len", "64",
                 "--micro-batch", "2", "--device", "cpu", "--set", "fp8.history_len=4"]
        p1 = run([binary, *calib, "--out", f"{tmp}/c1"])
        p2 = run(MPI + [binary, *calib, "--out", f"{tmp}/c2", "--tp", "2"])
        check(p1.returncode == 0 and p2.returncode == 0 and "(tp=2 dp=1)" in p2.stdout,
              f"calibrate by one process and at tp=2 ({p1.stderr.strip()[-200:]} {p2.stderr.strip()[-200:]})")
        s1 = cal.read_safetensors(f"{tmp}/c1/fp8_state.safetensors")
        s2 = cal.read_safetensors(f"{tmp}/c2/fp8_state.safetensors")
        check(s2["amax_history"].shape == (4, 24) and s2["calibration.steps"][0] == STEPS and
              np.allclose(s1["scale"], s2["scale"], rtol=1e-2) and
              np.allclose(s1["amax_history"], s2["amax_history"], rtol=1e-2, atol=1e-7),
              "the tp=2 state is one process's within float rounding "
              f"(max scale ratio {np.max(np.abs(s2['scale'] / s1['scale'] - 1)):.2e})")
        plain = f"{tmp}/plain"
        os.mkdir(plain)
        for name in ("config.json", "generation_config.json", "model.safetensors"):
            shutil.copy(f"{tmp}/c2/{name}", plain)
        tp2 = ["--set", "parallel.tp=2"]
        b = base.train(binary, f"{tmp}/B", *FP8, *tp2, "--set", f"model.path={tmp}/c2")
        a = base.train(binary, f"{tmp}/A", *FP8, *tp2, "--set", f"model.path={plain}",
                       "--set", f"fp8.calibration_steps={STEPS}")
        check(b.returncode == 0 and a.returncode == 0 and "fp8: state loaded from" in b.stdout and
              "scales calibrated" not in b.stdout, f"tp=2 train from the calibrated directory loads the state "
              f"({b.stderr.strip()[-200:]} {a.stderr.strip()[-200:]})")
        same = all(cal.ckpt_file(f"{tmp}/A", n) == cal.ckpt_file(f"{tmp}/B", n)
                   for n in ("model.safetensors", "fp8_state.safetensors"))
        check(same, "tp=2: the step-1 weights and FP8 state are byte for byte those of train's own calibration")
        after = cal.read_safetensors(f"{tmp}/B/checkpoint-000001/fp8_state.safetensors")["amax_history"]
        check(np.array_equal(after[1:3].view(np.uint32), s2["amax_history"][2:4].view(np.uint32)),
              "tp=2: the history after step 1 is the saved one rolled by a slot, bitwise")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(base.FAILS)} failure(s)")
    return 1 if base.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
