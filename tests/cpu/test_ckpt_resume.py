"""`gemmatron train` checkpoints and resume, end to end on the CPU (argv[1] = the binary), on the
bundled tiny model and data:
  - bitwise resume: 8 steps in one run vs. a run resumed from its step-4 checkpoint: the loss of
    every step (metrics.h5, float64) is bitwise the same; `--resume RUN_DIR` alone (config.yaml)
    and the automatic resume both work;
  - a SIGKILL in the middle of writing checkpoint 8 (LD_PRELOAD fault shim): checkpoint 4 stays
    complete and `latest`; `inspect` says a resume takes it; the same command again resumes from it,
    removes the partial directory and ends bitwise like the uninterrupted run;
  - a truncated checkpoint: `inspect` says what is wrong (exit 1) and a resume falls back to the
    previous one with a warning;
  - SIGTERM in the middle of a run: the step finishes, a checkpoint of it is written, exit 75; the
    same command again resumes from it;
  - a full disk (ENOSPC from the shim, and from a real small tmpfs where mounting is allowed): one
    clear error, exit 1, no partial directory left, the previous checkpoint untouched and usable;
  - a checkpoint of another model, or of another seq_len: refused with one clear line."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py

FAILS, PASSED = [], []
SMALL = ["--set", "data.seq_len=64", "--set", "data.micro_batch=2", "--set", "data.grad_accum=2",
         "--set", "optim.warmup_steps=2", "--set", "train.eval_every=0", "--set", "train.log_every=1",
         "--set", "train.save_final=false"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def train(binary, run_dir, *extra, env=None, config="configs/tiny-cpu.yaml"):
    cmd = [binary, "train", "--config", config, "--run-dir", run_dir, *SMALL, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def losses(run_dir):
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        return list(f["train/step"][:]), [float(x) for x in f["train/loss"][:]]


def latest(run_dir):
    with open(os.path.join(run_dir, "latest")) as f:
        return f.read().strip()


def build_shim(tmp):
    so = os.path.join(tmp, "fault.so")
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", so, "tests/cpu/fault_inject.c", "-ldl"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("cannot build the fault shim: " + r.stderr)
    return so


def fault_env(so, mode, path):
    env = dict(os.environ, LD_PRELOAD=so, GT_FAULT=mode, GT_FAULT_PATH=path)
    # AddressSanitizer builds: the shim comes before the sanitizer runtime in the library list.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return env


def inspect(binary, d):
    return subprocess.run([binary, "inspect", d], capture_output=True, text=True, timeout=120)


def test_bitwise(binary, tmp):
    ref, res = os.path.join(tmp, "ref"), os.path.join(tmp, "res")
    p = train(binary, ref, "--set", "train.steps=8", "--set", "checkpoint.every=4")
    check(p.returncode == 0 and os.path.isdir(os.path.join(ref, "checkpoint-000004")) and latest(ref) ==
          "checkpoint-000008", f"8 steps with checkpoint.every=4: checkpoints 4 and 8, latest 8 ({p.stderr.strip()})")
    want = losses(ref)
    shutil.copytree(ref, res)
    shutil.rmtree(os.path.join(res, "checkpoint-000008"))
    os.remove(os.path.join(res, "latest"))
    p = subprocess.run([binary, "train", "--resume", res], capture_output=True, text=True, timeout=600)
    got = losses(res)
    check(p.returncode == 0 and "resumed from " + os.path.join(res, "checkpoint-000004") in p.stdout and got == want,
          f"--resume RUN_DIR from step 4: losses of steps 1-8 bitwise equal ({got[1][-1]!r} vs {want[1][-1]!r})")
    # the automatic resume: the same command again finds checkpoint 8, the run is complete
    p = train(binary, res, "--set", "train.steps=12", "--set", "checkpoint.every=4")
    steps, _ = losses(res)
    check(p.returncode == 0 and "resumed from " + os.path.join(res, "checkpoint-000008") in p.stdout and
          steps == list(range(1, 13)), "a longer run into the same directory resumes automatically from step 8")
    return want


def test_kill_mid_write(binary, tmp, so, want):
    run = os.path.join(tmp, "kill")
    env = fault_env(so, "kill", "checkpoint-000008.tmp/optimizer.safetensors")
    p = train(binary, run, "--set", "train.steps=8", "--set", "checkpoint.every=4", env=env)
    check(p.returncode == -signal.SIGKILL and os.path.isdir(os.path.join(run, "checkpoint-000008.tmp")) and
          not os.path.exists(os.path.join(run, "checkpoint-000008")) and latest(run) == "checkpoint-000004",
          f"SIGKILL while writing checkpoint 8: partial .tmp left, checkpoint 4 is latest (exit {p.returncode})")
    ins = inspect(binary, run)
    check(ins.returncode == 0 and "resume would take: " + os.path.join(run, "checkpoint-000004") in ins.stdout
          and "latest -> checkpoint-000004\n" in ins.stdout,
          "inspect RUN_DIR: latest names checkpoint 4 and a resume takes it")
    p = train(binary, run, "--set", "train.steps=8", "--set", "checkpoint.every=4")
    check("resumed from " + os.path.join(run, "checkpoint-000004") in p.stdout,
          "the same command again resumes from checkpoint 4")
    # metrics.h5 was open for writing when the process died: the run must get past it too
    check(p.returncode == 0 and losses(run) == want and not os.path.exists(os.path.join(run, "checkpoint-000008.tmp"))
          and latest(run) == "checkpoint-000008",
          f"... removes the partial checkpoint and ends bitwise as the uninterrupted run ({p.stderr.strip()})")


def test_corrupt(binary, tmp):
    run = os.path.join(tmp, "res")
    ck12 = os.path.join(run, "checkpoint-000012")
    with open(os.path.join(ck12, "optimizer.safetensors"), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(ck12, "optimizer.safetensors")) // 2)
    ins = inspect(binary, ck12)
    check(ins.returncode == 1 and re.search(r"INCOMPLETE: .*optimizer\.safetensors.*truncated", ins.stdout),
          f"inspect of a truncated checkpoint: exit 1, names the file ({ins.stdout.strip().splitlines()[-1]})")
    p = train(binary, run, "--set", "train.steps=12", "--set", "checkpoint.every=4")
    check(p.returncode == 0 and "checkpoint-000012 is not usable" in p.stderr and "falling back" in p.stderr and
          "resumed from " + os.path.join(run, "checkpoint-000008") in p.stdout,
          f"resume falls back to checkpoint 8 with a warning ({p.stderr.strip()[:160]})")


def test_sigterm(binary, tmp):
    run = os.path.join(tmp, "term")
    cmd = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, *SMALL, "--set",
           "train.steps=100000", "--set", "checkpoint.every=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, stopped = 0, ""
    for line in proc.stdout:
        m = re.match(r"step (\d+)/", line)
        if m and int(m.group(1)) >= 3 and not seen:
            proc.send_signal(signal.SIGTERM)
            seen = int(m.group(1))
        if line.startswith("stopped by signal"):
            stopped = line
    rc = proc.wait(timeout=300)
    m = re.search(r"after step (\d+)", stopped) if seen else None
    step = int(m.group(1)) if m else -1
    ck = os.path.join(run, "checkpoint-%06d" % step)
    check(rc == 75 and step >= seen and os.path.isdir(ck) and latest(run) == os.path.basename(ck),
          f"SIGTERM at step {seen}: step {step} finished, its checkpoint written, exit {rc} (75)")
    p = train(binary, run, "--set", "train.steps=%d" % (step + 2))
    check(p.returncode == 0 and "resumed from " + ck in p.stdout and losses(run)[0] == list(range(1, step + 3)),
          "the same command again resumes after the stop")


def test_enospc_shim(binary, tmp, so):
    run = os.path.join(tmp, "full")
    p = train(binary, run, "--set", "train.steps=4", "--set", "checkpoint.every=2",
              env=fault_env(so, "enospc", "checkpoint-000004.tmp/optimizer"))
    left = sorted(os.listdir(run))
    ins = inspect(binary, os.path.join(run, "checkpoint-000002"))
    check(p.returncode == 1 and "no space left on the device" in p.stderr and len(p.stderr.strip().splitlines()) == 1
          and "checkpoint-000004" not in " ".join(left) and latest(run) == "checkpoint-000002" and ins.returncode == 0,
          f"ENOSPC while writing checkpoint 4: one line ({p.stderr.strip()}), nothing partial left ({left}), "
          "checkpoint 2 untouched")


def test_enospc_tmpfs(binary, tmp):
    probe = os.path.join(tmp, "size")
    train(binary, probe, "--set", "train.steps=2", "--set", "checkpoint.every=2")
    ck = os.path.join(probe, "checkpoint-000002")
    size = sum(os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck))
    mnt = os.path.join(tmp, "tmpfs")
    os.makedirs(mnt)
    kb = (size * 3 // 2 + 256 * 1024) // 1024  # one checkpoint and the run's small files, not two checkpoints
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"skip real full disk: cannot mount a tmpfs here ({r.stderr.strip()}); the shim case covers ENOSPC")
        return
    try:
        run = os.path.join(mnt, "run")
        p = train(binary, run, "--set", "train.steps=4", "--set", "checkpoint.every=2", "--set", "checkpoint.keep=1")
        left = sorted(os.listdir(run))
        ins = inspect(binary, os.path.join(run, "checkpoint-000002"))
        check(p.returncode == 1 and "no space left on the device" in p.stderr and latest(run) == "checkpoint-000002"
              and not any(x.startswith("checkpoint-000004") for x in left) and ins.returncode == 0,
              f"a real full disk ({kb} KiB tmpfs): clear error ({p.stderr.strip()}), checkpoint 2 intact, "
              f"nothing partial ({left})")
    finally:
        subprocess.run(["umount", mnt])


def test_refusals(binary, tmp):
    run = os.path.join(tmp, "res")
    p = train(binary, run, "--set", "train.steps=12", "--set", "data.seq_len=32")
    check(p.returncode == 1 and "data.seq_len: 32, but checkpoint" in p.stderr and
          len(p.stderr.strip().splitlines()) == 1, f"another seq_len refused: {p.stderr.strip()}")
    wider = os.path.join(tmp, "wider")
    os.makedirs(wider)
    with open("configs/hf/tiny/config.json") as f:
        cfg = f.read()
    with open(os.path.join(wider, "config.json"), "w") as f:
        f.write(re.sub(r'"intermediate_size": *\d+', '"intermediate_size": 512', cfg))
    p = train(binary, run, "--set", "train.steps=12", "--set", "model.config=" + wider)
    check(p.returncode == 1 and "a checkpoint of another model: intermediate_size" in p.stderr and
          len(p.stderr.strip().splitlines()) == 1, f"another model refused: {p.stderr.strip()}")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt-resume-")
    try:
        so = build_shim(tmp)
        want = test_bitwise(binary, tmp)
        test_kill_mid_write(binary, tmp, so, want)
        test_corrupt(binary, tmp)
        test_sigterm(binary, tmp)
        test_enospc_shim(binary, tmp, so)
        test_enospc_tmpfs(binary, tmp)
        test_refusals(binary, tmp)
    finally:
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"ckpt_resume: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
