"""optim.state and optim.grads end to end on the CPU (argv[1] = the binary), on the bundled tiny
model and data (bf16 gradients are emulated there: every gradient write rounded to bf16 precision):
  - each state (fp32, bf16_moments, bf16), and fp32 and bf16 with bf16 gradients, trains 30 steps;
    the lean variants' loss curves stay within TOL of the fp32 state's at every step, and differ
    from it (their rounding is in force), bf16 gradients from the same state with fp32 ones;
  - pure bf16 (state and gradients) is bitwise reproducible: the same run twice gives the same losses;
  - with each variant, 8 steps in one run and a run resumed from its step-4 checkpoint give bitwise
    the same losses (bf16 moments are stored widened to F32: exact both ways);
  - a checkpoint of one state resumes under another (fp32 -> bf16 and bf16 -> fp32): converted,
    the losses stay within TOL of the uninterrupted fp32 run."""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py

TOL = 0.005  # absolute, on losses of 3-5.6 (measured: < 4e-4 over these 30 steps)
FAILS, PASSED = [], []
SMALL = ["--set", "data.seq_len=64", "--set", "data.micro_batch=2", "--set", "data.grad_accum=2",
         "--set", "optim.warmup_steps=2", "--set", "train.eval_every=0", "--set", "train.log_every=1",
         "--set", "train.save_final=false", "--set", "data.val=[]", "--set", "train.quiet=true"]
STATES = ["fp32", "bf16_moments", "bf16"]
# variant name -> (optim.state, optim.grads)
VARIANTS = {s: (s, "fp32") for s in STATES}
VARIANTS.update({"fp32+bf16grads": ("fp32", "bf16"), "bf16+bf16grads": ("bf16", "bf16")})


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def train(binary, run_dir, variant, steps, *extra):
    state, grads = VARIANTS[variant]
    cmd = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run_dir, *SMALL,
           "--set", f"train.steps={steps}", "--set", f"optim.state={state}", "--set", f"optim.grads={grads}",
           *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
    return r.returncode


def losses(run_dir):
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        return [float(x) for x in f["train/loss"][:]]


def resume_from_4(binary, run_dir, state):
    """Drops checkpoints after step 4 and the run's later metrics; resumes to step 8."""
    for d in os.listdir(run_dir):
        if d.startswith("checkpoint-") and d != "checkpoint-000004":
            shutil.rmtree(os.path.join(run_dir, d))
    with open(os.path.join(run_dir, "latest"), "w") as f:
        f.write("checkpoint-000004\n")
    return train(binary, run_dir, state, 8, "--set", "checkpoint.every=4")


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="gt_optim_state_")
    try:
        curves = {}
        for s in VARIANTS:
            d = os.path.join(tmp, "curve-" + s)
            check(train(binary, d, s, 30) == 0, f"{s}: 30 steps run")
            curves[s] = losses(d)
        ref = curves["fp32"]
        for s in list(VARIANTS)[1:]:
            diff = max(abs(a - b) for a, b in zip(curves[s], ref))
            check(len(curves[s]) == 30 and diff < TOL, f"{s}: loss within {TOL} of fp32's at every step (max {diff:.2e})")
            check(curves[s] != ref, f"{s}: losses differ from fp32's (its rounding is in force)")
        for s in ("fp32", "bf16"):
            check(curves[s + "+bf16grads"] != curves[s], f"{s}: bf16 gradients change the losses (their rounding is in force)")
        check(curves["fp32"][-1] < curves["fp32"][0] - 1.0, "fp32: the loss falls")
        again = os.path.join(tmp, "again-bf16")
        train(binary, again, "bf16+bf16grads", 30)
        check(losses(again) == curves["bf16+bf16grads"], "bf16+bf16grads: the same run twice gives bitwise the same losses")

        full = {}
        for s in VARIANTS:
            d = os.path.join(tmp, "full-" + s)
            check(train(binary, d, s, 8, "--set", "checkpoint.every=4") == 0, f"{s}: 8 steps with checkpoints")
            full[s] = losses(d)
            check(resume_from_4(binary, d, s) == 0, f"{s}: resume from step 4 runs")
            got = losses(d)
            check(got == full[s], f"{s}: resumed losses bitwise equal the uninterrupted run's")

        for a, b in (("fp32", "bf16"), ("bf16", "fp32")):
            d = os.path.join(tmp, f"cross-{a}-{b}")
            train(binary, d, a, 8, "--set", "checkpoint.every=4")
            check(resume_from_4(binary, d, b) == 0, f"{a} checkpoint resumes with optim.state={b}")
            got = losses(d)
            diff = max(abs(x - y) for x, y in zip(got, full["fp32"]))
            check(len(got) == 8 and diff < TOL, f"{a} -> {b}: losses within {TOL} of fp32's (max {diff:.2e})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"optim_state: {len(PASSED)} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
