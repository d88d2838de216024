"""`gemmatron train` with FP8 under mpirun on the CPU (argv[1] = the binary; run by
tests/mpi/test_mpi_train_fp8.sh), tiny model with a vocabulary of 260 (as tests/mpi/mpi_ckpt_resume.py):
  - dp=2 follows one process with the same global batch: the amaxes are MAX-reduced over the whole
    grid, so both see the same amax of every tensor and keep the same scales (/fp8 rows and losses
    agree to float rounding of the gradient sums);
  - tp=2: a run resumed under mpirun from its step-4 checkpoint continues bitwise (losses and the
    final fp8_state.safetensors, written by rank 0), and the same checkpoint resumed by one process
    restores the FP8 state and follows the tp=2 run."""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_ckpt_resume as base  # noqa: E402  (its tiny-260 setup, SMALL settings and train())

FP8 = ["--set", "fp8.enabled=true", "--set", "fp8.history_len=4", "--set", "fp8.calibration_steps=1",
       "--set", "fp8.log_every=1", "--set", "train.steps=8"]


def rows(run_dir):
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        return f["train/loss"][:], f["fp8/step"][:], f["fp8/scale"][:]


def rel(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_dp(binary, tmp):
    one, dp2 = os.path.join(tmp, "one"), os.path.join(tmp, "dp2")
    short = ["--set", "train.steps=4"]
    p1 = base.train(binary, one, *FP8, *short, "--set", "data.micro_batch=4", mpi=False)
    p2 = base.train(binary, dp2, *FP8, *short, "--set", "data.micro_batch=2")
    ok = p1.returncode == 0 and p2.returncode == 0
    base.check(ok, f"FP8 runs: one process and dp=2 ({p1.stderr.strip()[-200:]}{p2.stderr.strip()[-200:]})")
    if not ok:
        return
    (l1, s1, c1), (l2, s2, c2) = rows(one), rows(dp2)
    base.check(list(s1) == list(s2) == [1, 2, 3, 4] and rel(l2, l1) < 1e-5 and rel(c2, c1) < 1e-4,
               f"dp=2 follows one process: losses within {rel(l2, l1):.1e}, FP8 scales within {rel(c2, c1):.1e}")


def test_tp(binary, tmp):
    ref, res, one = os.path.join(tmp, "tp2"), os.path.join(tmp, "tp2-res"), os.path.join(tmp, "tp2-one")
    p = base.train(binary, ref, *FP8, "--set", "parallel.tp=2", "--set", "checkpoint.every=4")
    base.check(p.returncode == 0 and os.path.exists(os.path.join(ref, "checkpoint-000004", "fp8_state.safetensors")),
               f"tp=2 FP8 run with checkpoints 4 and 8 holding FP8 state ({p.stderr.strip()[-200:]})")
    if p.returncode:
        return
    want = rows(ref)
    base.rewind_to_4(ref, res)
    shutil.copytree(res, one)
    p = base.train(binary, res, *FP8, "--set", "parallel.tp=2", "--set", "checkpoint.every=4")
    got = rows(res)
    a = open(os.path.join(ref, "checkpoint-000008", "fp8_state.safetensors"), "rb").read()
    b = open(os.path.join(res, "checkpoint-000008", "fp8_state.safetensors"), "rb").read()
    base.check(p.returncode == 0 and "fp8: state restored" in p.stdout and
               all(np.array_equal(x, y) for x, y in zip(got, want)) and a == b,
               "tp=2 resumed from step 4 under mpirun: losses, /fp8 rows and final FP8 state bitwise equal")
    p = base.train(binary, one, *FP8, "--set", "checkpoint.every=4", mpi=False)
    got = rows(one)
    base.check(p.returncode == 0 and "fp8: state restored" in p.stdout and rel(got[0], want[0]) < 1e-3 and
               rel(got[2], want[2]) < 1e-2,
               f"the tp=2 checkpoint resumed by one process: FP8 state restored, losses within "
               f"{rel(got[0], want[0]):.1e} and scales within {rel(got[2], want[2]):.1e} of the tp=2 run")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt-mpi-fp8-")
    try:
        base.even_vocab(tmp)
        test_dp(binary, tmp)
        test_tp(binary, tmp)
    finally:
        if not base.FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"mpi_train_fp8: {len(base.PASSED)} passed, {len(base.FAILS)} failed")
    return 1 if base.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
