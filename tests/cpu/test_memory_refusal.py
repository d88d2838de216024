"""The memory plan's refusal (train/memory_plan.h), end to end on the CPU (argv[1] = the binary), with
GT_DEVICE_MEMORY as the device budget (the CPU backend reports none of its own):
  - the tiny model's run (micro_batch 4 x 128 tokens: 9.55 MiB planned) under a 4 MiB budget stops
    before training with exit 1 and ONE line: the estimate, the free memory, and the changes that
    were planned to fit (micro_batch 1 keeping the batch with grad_accum x4, tp=4); nothing is
    trained (no metrics.h5);
  - under 20 MiB it runs and prints its plan;
  - `bench` refuses alike under 1 MiB (no single change fits there);
  - a malformed GT_DEVICE_MEMORY is one clear error."""
import os
import shutil
import subprocess
import sys
import tempfile

FAILS, PASSED = [], []
SMALL = ["--set", "train.steps=2", "--set", "optim.warmup_steps=1", "--set", "train.eval_every=0",
         "--set", "train.save_final=false", "--set", "data.val=[]"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def run(cmd, budget):
    env = dict(os.environ, GT_DEVICE_MEMORY=budget)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="gt_mem_refusal_")
    try:
        d = os.path.join(tmp, "run")
        train = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", d, *SMALL]
        r = run(train, "4M")
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1, f"4 MiB: exit 1 (got {r.returncode})")
        check(len(lines) == 1, f"4 MiB: one line on stderr (got {len(lines)}: {r.stderr!r})")
        msg = lines[0] if lines else ""
        for part in ["memory plan: 9.55 MiB per rank", "micro_batch 4 x 128 tokens, optim.state fp32",
                     "does not fit the 4.00 MiB free", "would fit: data.micro_batch=1 (data.grad_accum x4 keeps the batch)",
                     "parallel.tp=4"]:
            check(part in msg, f"4 MiB: the line says {part!r}")
        check(not os.path.exists(os.path.join(d, "metrics.h5")), "4 MiB: nothing trained")
        shutil.rmtree(d, ignore_errors=True)
        r = run(train, "20M")
        check(r.returncode == 0, f"20 MiB: the run trains (exit {r.returncode}: {r.stderr.strip()})")
        check("memory plan: 9.55 MiB per rank" in r.stdout and "of 20.00 MiB free" in r.stdout, "20 MiB: the plan is printed")
        r = run([binary, "bench", "--model", "configs/hf/tiny", "--device", "cpu", "--batch", "2", "--seq", "64",
                 "--steps", "1", "--warmup", "0"], "1M")
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and "does not fit the 1.00 MiB free" in lines[0]
              and "no single change fits" in lines[0], f"bench, 1 MiB: refused in one line ({r.stderr.strip()!r})")
        r = run(train, "12Q")
        check(r.returncode == 1 and "GT_DEVICE_MEMORY=12Q: expected bytes" in r.stderr, "a malformed budget is one clear error")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"memory_refusal: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
