#!/usr/bin/env python3
"""Bitwise resume of `gemmatron train` (scripts/gpu_finetune.sh resume): the same run of --steps
steps done twice, from the same config and seed:
  1. ROOT/ref: uninterrupted;
  2. ROOT/int: stopped after step --stop-after: SIGTERM is sent --signal-delay seconds after the
     progress line of step stop-after - 1 appears, so that it lands while step stop-after runs (a
     Gemma-2B step takes longer than the delay; on a very fast step the stop may come a step
     later or earlier: the step it came after is reported and used); the trainer finishes that
     step, writes a checkpoint of it and exits 75, as under Slurm preemption. Then the same command
     again, which resumes from that checkpoint and runs to the end.
The losses and gradient norms of every step (metrics.h5, float64) must be bitwise equal: the steps
after the stop prove the resume, the steps before it that two fresh runs agree. Extra `--set k=v`
go to both runs (gemmatron's own keys; the run config parser rejects unknown ones). Needs h5py.

Disk: a Gemma-2B checkpoint (BF16 weights + FP32 masters and AdamW moments) is about 35 GB. ref's
final checkpoint is deleted once the run is done; int's stop checkpoint has been read when the
resumed run prints "resumed from", and its weight files are deleted then (--free-disk, default), so
that no more than one checkpoint is on the disk while the resumed run writes its final one.

  python3 scripts/gpu_resume_check.py --bin build-gpu/gemmatron --config configs/gemma-2b-1gpu.yaml \\
      --root runs/gpu/resume-bf16 --steps 30 --stop-after 20 --set data.seq_len=512 ...
Last line: `RESUME <label> PASS|FAIL ...`; exit status 0 on PASS, 1 on FAIL.
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time


def train_cmd(a, run_dir):
    cmd = [a.bin, "train", "--config", a.config, "--run-dir", run_dir, "--set", f"train.steps={a.steps}",
           "--set", "train.log_every=1", "--set", "train.quiet=false"]
    for kv in a.set:
        cmd += ["--set", kv]
    return cmd


def run_logged(cmd, log, on_line=None):
    """Runs cmd, stdout+stderr to log and scanned line by line by on_line(proc, line). Returns the
    exit status and the output."""
    out = []
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            f.write(line)
            out.append(line)
            if on_line:
                on_line(proc, line)
        rc = proc.wait()
        f.write(f"[exit {rc}]\n")
    return rc, "".join(out)


def metrics(run_dir):
    import h5py
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r", libver="latest", swmr=True) as f:
        return {int(s): (float(l), float(g)) for s, l, g in
                zip(f["train/step"][:], f["train/loss"][:], f["train/grad_norm"][:])}


def rm_checkpoints(run_dir):
    for d in glob.glob(os.path.join(run_dir, "checkpoint-*")):
        shutil.rmtree(d, ignore_errors=True)


def fail(label, why, log):
    print(f"RESUME {label} FAIL: {why} (log: {log})")
    return 1


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the gemmatron binary")
    p.add_argument("--config", required=True, help="run config YAML")
    p.add_argument("--root", required=True, help="directory for the runs (ref/, int/, log); emptied first")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--stop-after", type=int, default=20, help="stop the interrupted run after this step")
    p.add_argument("--signal-delay", type=float, default=0.02, help="seconds from step stop-after - 1 to SIGTERM")
    p.add_argument("--label", default="run", help="name in the result line")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="gemmatron --set, repeatable")
    p.add_argument("--keep-disk", action="store_true", help="do not delete checkpoints to save disk space")
    a = p.parse_args(argv)
    if not 1 < a.stop_after < a.steps:
        p.error("--stop-after must be in (1, --steps)")
    shutil.rmtree(a.root, ignore_errors=True)
    os.makedirs(a.root)
    log = os.path.join(a.root, "log.txt")
    ref, inter = os.path.join(a.root, "ref"), os.path.join(a.root, "int")
    t0 = time.time()

    rc, out = run_logged(train_cmd(a, ref), log)
    if rc != 0:
        return fail(a.label, f"uninterrupted run exit {rc}: {out.strip().splitlines()[-1:]}", log)
    ck_times = re.findall(r"^checkpoint: .* \(([\d.]+) s\)", out, re.M)
    if not a.keep_disk:
        rm_checkpoints(ref)
    t_ref = time.time() - t0

    sent = []

    def stop_at(proc, line):
        m = re.match(r"step (\d+)/", line)
        if m and not sent and int(m.group(1)) >= a.stop_after - 1:
            time.sleep(a.signal_delay)
            proc.send_signal(signal.SIGTERM)
            sent.append(int(m.group(1)))

    rc, out = run_logged(train_cmd(a, inter), log, stop_at)
    m = re.search(r"stopped by signal \d+ after step (\d+)", out)
    if rc != 75 or not m:
        return fail(a.label, f"interrupted run: exit {rc} (want 75) after SIGTERM at step {sent}", log)
    stopped = int(m.group(1))
    ck = os.path.join(inter, "checkpoint-%06d" % stopped)

    def free_disk(proc, line):
        if line.startswith("resumed from ") and not a.keep_disk:
            for f in glob.glob(os.path.join(ck, "*.safetensors")):
                os.remove(f)  # already read into the model and optimizer

    rc, out = run_logged(train_cmd(a, inter), log, free_disk)
    if rc != 0 or ("resumed from " + ck) not in out:
        return fail(a.label, f"resumed run: exit {rc}, 'resumed from {ck}' {'seen' if ck in out else 'not seen'}", log)
    if not a.keep_disk:
        rm_checkpoints(inter)

    want, got = metrics(ref), metrics(inter)
    if sorted(want) != list(range(1, a.steps + 1)) or sorted(got) != list(range(1, a.steps + 1)):
        return fail(a.label, f"metrics.h5 steps: ref {sorted(want)[:3]}..{len(want)}, resumed {sorted(got)[:3]}..{len(got)}",
                    log)

    def maxdiff(steps):
        d = [max(abs(want[s][0] - got[s][0]), abs(want[s][1] - got[s][1])) for s in steps]
        return max(d), sum(x != 0 for x in d)

    after, n_after = maxdiff(range(stopped + 1, a.steps + 1))
    before, n_before = maxdiff(range(1, stopped + 1))
    for s in range(stopped + 1, a.steps + 1):
        print(f"  step {s:3d}: loss {want[s][0]!r:>22} vs resumed {got[s][0]!r:>22}  grad_norm {want[s][1]:.6g} vs "
              f"{got[s][1]:.6g}{'' if want[s] == got[s] else '  DIFFERENT'}")
    ok = n_after == 0
    print(f"RESUME {a.label} {'PASS' if ok else 'FAIL'}: stopped after step {stopped} (SIGTERM {a.signal_delay} s after step {sent[0]}), "
          f"resumed to {a.steps}; steps {stopped + 1}-{a.steps} (resumed vs uninterrupted): loss/grad_norm max |diff| "
          f"{after:.3g}, {n_after} steps differ; steps 1-{stopped} (two fresh runs): max |diff| {before:.3g}, "
          f"{n_before} differ; final loss {want[a.steps][0]:.6f}; checkpoint write {'/'.join(ck_times) or '?'} s; "
          f"{time.time() - t0:.0f} s (uninterrupted run {t_ref:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
