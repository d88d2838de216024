"""The distributed optimizer (parallel.zero, ZeRO-1) under mpirun on the CPU, tiny model and demo
data (argv[1] = the binary; run by tests/mpi/test_mpi_zero.sh). Every run takes 6 steps of the same
global batch (8 sequences of 64 tokens: micro_batch x grad_accum x dp) and writes its last
checkpoint; the checkpoints' optimizer.safetensors (FP32 master weights and both moments of every HF
tensor, written by the ranks that own them) are compared:
  - ZeRO against the all-reduce optimizer at dp=2, dp=4, tp=2 x dp=2, and dp=2 with bf16 gradients
    (optim.grads; emulated on the CPU, reduced as stored): every step's loss within
    1e-6 (relative) and every master weight within 1e-6, the moments within 1e-5 of their tensor's
    largest value (only the order of the gradients' sums and of the norm's partial sums differs);
  - ZeRO at dp=4 run twice: losses and checkpoint files bitwise the same;
  - the dp=4 ZeRO checkpoint of step 3 resumed at dp=4 with ZeRO (steps 4-6 and the final
    checkpoint bitwise those of the uninterrupted run), and at dp=2 with ZeRO, dp=2 without, dp=1 and
    tp=2 x dp=2 with ZeRO (steps 4-6 within 1e-5, final master weights within 1e-5).
The tiny model's vocabulary (259) is widened to 260 (config and shard header) so that tp=2 splits it
without padding rows."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

FAILS, PASSED = [], []
GLOBAL_SEQS = 8
BASE = ["--set", "data.seq_len=64", "--set", "optim.warmup_steps=2", "--set", "train.eval_every=0",
        "--set", "train.log_every=1", "--set", "train.save_final=false", "--set", "train.steps=6",
        "--set", "data.grad_accum=2"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def even_vocab(tmp):
    d = os.path.join(tmp, "tiny260")
    os.makedirs(d)
    with open("configs/hf/tiny/config.json") as f:
        cfg = re.sub(r'"vocab_size": *259', '"vocab_size": 260', f.read())
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(cfg)
    with open("data/demo/train.bin", "rb") as f:
        shard = bytearray(f.read())
    assert struct.unpack_from("<I", shard, 24)[0] == 259
    struct.pack_into("<I", shard, 24, 260)
    with open(os.path.join(d, "train.bin"), "wb") as f:
        f.write(shard)
    BASE.extend(["--set", "model.config=" + d, "--set", "data.train=[%s]" % os.path.join(d, "train.bin"),
                 "--set", "data.val=[]"])


def train(binary, run_dir, tp, dp, zero, *extra):
    """A run of tp x dp ranks (one process without mpirun) with the same global batch."""
    mb = GLOBAL_SEQS // 2 // dp
    cmd = ([] if tp * dp == 1 else ["mpirun", "--oversubscribe", "--allow-run-as-root", "-np", str(tp * dp)])
    cmd += [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run_dir, *BASE,
            "--set", "parallel.tp=%d" % tp, "--set", "data.micro_batch=%d" % mb,
            "--set", "parallel.zero=%s" % ("true" if zero else "false"), *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-2000:])
    return p


def losses(run_dir):
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        return [float(x) for x in f["train/loss"][:]]


def state(ckpt):
    """optimizer.safetensors of a checkpoint: {name: float32 array} (the CPU backend's state is F32)."""
    with open(os.path.join(ckpt, "optimizer.safetensors"), "rb") as f:
        data = f.read()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], dtype=np.float32).reshape(t["shape"])
    return out


def last_ckpt(run_dir):
    with open(os.path.join(run_dir, "latest")) as f:
        return os.path.join(run_dir, f.read().strip())


def close_losses(a, b, tol):
    return len(a) == len(b) and all(abs(x - y) <= tol * abs(y) for x, y in zip(a, b))


def compare_state(a, b, tol_master, tol_moment):
    """Largest differences of the master weights (absolute) and moments (relative to the tensor's
    largest value); inf when the names differ."""
    if a.keys() != b.keys():
        return float("inf"), float("inf")
    dm, dv = 0.0, 0.0
    for k in a:
        d = float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) if a[k].size else 0.0
        if k.endswith(".master"):
            dm = max(dm, d)
        else:
            dv = max(dv, d / max(float(np.max(np.abs(b[k]))), 1e-30))
    return dm, dv


def test_equivalence(binary, tmp, name, tp, dp, *extra):
    z, ref = os.path.join(tmp, name + "-zero"), os.path.join(tmp, name + "-allreduce")
    pz, pr = train(binary, z, tp, dp, True, *extra), train(binary, ref, tp, dp, False, *extra)
    if pz.returncode or pr.returncode:
        check(False, f"{name}: both runs complete")
        return None
    lz, lr = losses(z), losses(ref)
    check(len(lz) == 6 and close_losses(lz, lr, 1e-6), f"{name}: ZeRO losses within 1e-6 of the all-reduce run "
          f"({lz} vs {lr})")
    dm, dv = compare_state(state(last_ckpt(z)), state(last_ckpt(ref)), 1e-6, 1e-5)
    check(dm <= 1e-6 and dv <= 1e-5, f"{name}: final master weights within 1e-6 ({dm:.2e}), moments within 1e-5 "
          f"of their scale ({dv:.2e})")
    return z


def same_files(a, b, names):
    for n in names:
        with open(os.path.join(a, n), "rb") as f, open(os.path.join(b, n), "rb") as g:
            if f.read() != g.read():
                return False
    return True


def rewind_to_3(src, dst):
    shutil.copytree(src, dst)
    shutil.rmtree(os.path.join(dst, "checkpoint-000006"))
    os.remove(os.path.join(dst, "latest"))


def test_resume(binary, tmp, dp4):
    every = ["--set", "checkpoint.every=3"]
    ref = os.path.join(tmp, "dp4-ckpt")
    p = train(binary, ref, 1, 4, True, *every)
    if p.returncode:
        check(False, "dp=4 ZeRO run with checkpoints 3 and 6")
        return
    want, final = losses(ref), state(last_ckpt(ref))
    check(want == losses(dp4) and same_files(last_ckpt(ref), last_ckpt(dp4), ["optimizer.safetensors",
                                                                              "model.safetensors"]),
          "dp=4 ZeRO run to run: losses and final checkpoint bitwise the same")
    for name, tp, dp, zero, tol in [("dp4-zero", 1, 4, True, 0), ("dp2-zero", 1, 2, True, 1e-5),
                                    ("dp2-allreduce", 1, 2, False, 1e-5), ("dp1", 1, 1, False, 1e-5),
                                    ("tp2-dp2-zero", 2, 2, True, 1e-5)]:
        res = os.path.join(tmp, "resume-" + name)
        rewind_to_3(ref, res)
        p = train(binary, res, tp, dp, zero, *every)
        got = losses(res) if p.returncode == 0 else []
        resumed = "resumed from " + os.path.join(res, "checkpoint-000003") in p.stdout
        if tol == 0:
            ok = resumed and got == want and same_files(last_ckpt(res), last_ckpt(ref), ["optimizer.safetensors",
                                                                                           "model.safetensors"])
            check(ok, f"dp=4 ZeRO checkpoint resumed at {name}: losses of steps 1-6 and the final checkpoint bitwise")
            continue
        dm, dv = compare_state(state(last_ckpt(res)), final, tol, tol) if p.returncode == 0 else (1, 1)
        check(resumed and got[:3] == want[:3] and close_losses(got[3:], want[3:], tol) and dm <= tol,
              f"dp=4 ZeRO checkpoint resumed at {name}: steps 4-6 within {tol} ({got[3:]} vs {want[3:]}), "
              f"final master weights within {tol} ({dm:.2e})")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt-mpi-zero-")
    try:
        even_vocab(tmp)
        test_equivalence(binary, tmp, "dp2", 1, 2)
        dp4 = test_equivalence(binary, tmp, "dp4", 1, 4)
        test_equivalence(binary, tmp, "tp2-dp2", 2, 2)
        test_equivalence(binary, tmp, "dp2-bf16grads", 1, 2, "--set", "optim.grads=bf16")
        if dp4:
            test_resume(binary, tmp, dp4)
    finally:
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"mpi_zero: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
