"""The README's quick start, run as it is written (argv[1] = the gemmatron binary):
  - the shell block between <!-- quickstart:begin --> and <!-- quickstart:end --> of README.md is taken
    out and run by bash, with only its six assignments (MODEL, TOKENIZER, DATA, CONFIG, RUN, GEMMATRON)
    given other values: a tiny HF Gemma made here (2 steps of the demo config from HF's random init),
    the byte tokenizer, a generated chat/prompt-response JSONL file, a 40-step config, a fresh run
    directory and the binary under test;
  - what it printed: CPU progress lines with tokens/s, rss and ETA and no MFU or device memory, eval
    lines with their time and metrics file, the checkpoint line, and the run summary of `train` and
    of `inspect` whose numbers equal those computed here from metrics.h5, the config and the disk;
  - the loss in metrics.h5 fell; the exported BF16 safetensors hold exactly the model's tensor names
    and shapes (the block's own listing and an independent reading of the safetensors headers);
  - the plots that metrics.plot_every drew are PNGs of the expected size that are not blank;
  - plot_metrics.py overlays that run and an FP8 run (with the FP8 panel);
  - metrics.plot_every without a Python, or without matplotlib: one warning line, the run succeeds;
    its children are reaped as it goes (never more than one zombie), and Ctrl-C while one draws stops
    the run cleanly, with the resume command in its summary."""
import json
import os
import random
import re
import shlex
import struct
import subprocess
import sys
import tempfile
import time

import h5py
import yaml

FAILS, PASSED = [], []
NAMES = ("MODEL", "TOKENIZER", "DATA", "CONFIG", "RUN", "GEMMATRON")
STEPS, EVAL_EVERY = 40, 20
GLOBAL_TOKENS = 4 * 1 * 128  # micro_batch 4 x grad_accum 1 x seq_len 128 (make_config)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def quickstart_block():
    text = open("README.md", encoding="utf-8").read()
    m = re.search(r"<!-- quickstart:begin -->\n```sh\n(.*?)```\n<!-- quickstart:end -->", text, re.S)
    return m.group(1) if m else None


def substitute(block, values):
    """The block with the value of each NAME=... line replaced; None if a name is not there exactly once."""
    out = block
    for name, value in values.items():
        pattern = re.compile(rf"^{name}=\S*(.*)$", re.M)
        if len(pattern.findall(out)) != 1:
            return None
        out = pattern.sub(lambda m: f"{name}={shlex.quote(value)}{m.group(1)}", out)
    return out


def make_data(path, n=1500):
    """Chats and prompt/response pairs with a pattern a byte-level model picks up in a few steps."""
    rng = random.Random(7)
    capitals = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
                ("Egypt", "Cairo"), ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Chile", "Santiago")]
    with open(path, "w") as f:
        for i in range(n):
            country, city = rng.choice(capitals)
            if i % 2:
                doc = {"messages": [{"role": "user", "content": f"What is the capital of {country}?"},
                                    {"role": "model", "content": f"The capital of {country} is {city}."}]}
            else:
                doc = {"prompt": f"Capital of {country}:", "response": f" {city}."}
            f.write(json.dumps(doc) + "\n")


def make_model(binary, tmp):
    """An HF Gemma directory with weights: the demo's tiny model after 2 steps from HF's random init."""
    run = os.path.join(tmp, "base")
    p = subprocess.run([binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, "--set", "train.steps=2",
                        "--set", "optim.warmup_steps=1", "--set", "train.quiet=true"],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"a tiny HF model to fine-tune ({p.stderr.strip()[-300:]})")
    return os.path.join(run, "final")


def make_config(tmp):
    cfg = yaml.safe_load(open("configs/tiny-cpu.yaml"))
    cfg["train"].update(steps=STEPS, eval_every=EVAL_EVERY, log_every=10)
    cfg["data"]["grad_accum"] = 1  # a short test, also under the sanitizers
    path = os.path.join(tmp, "quick.yaml")
    yaml.safe_dump(cfg, open(path, "w"))
    return path


def st_header(path):
    """{name: (dtype, shape)} from a safetensors file's header, read without the safetensors package."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


def dir_tensors(d):
    out = {}
    for name in sorted(os.listdir(d)):
        if name.endswith(".safetensors"):
            out.update(st_header(os.path.join(d, name)))
    return out


def png_ok(path, min_w=500, min_h=300):
    """(ok, what): a PNG of at least that size whose pixels are not one colour."""
    import matplotlib.image
    import numpy as np
    if not os.path.isfile(path) or open(path, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        return False, f"{path}: not a PNG"
    img = matplotlib.image.imread(path)[..., :3]
    h, w = img.shape[:2]
    ink = float(np.mean(np.any(img < 0.9, axis=2)))  # share of pixels that are not (near) white
    std = float(img.std())
    return w >= min_w and h >= min_h and std > 0.02 and ink > 0.005, f"{os.path.basename(path)} {w}x{h}, std {std:.3f}, ink {ink:.3f}"


def check_progress(out, run):
    steps = [int(s) for s in re.findall(r"^step (\d+)/", out, re.M)]
    check(steps == [1, 10, 20, 30, 40], f"progress lines at steps 1, 10, ..., 40 ({steps})")
    cpu = re.compile(rf"^step \d+/{STEPS} \| loss [0-9.]+ \| lr [0-9.e+-]+ \| grad_norm [0-9.]+ \| \d+ tok/s \| "
                     r"rss [0-9.]+ GiB \| ETA \w+$")
    lines = [l for l in out.splitlines() if l.startswith("step ")]
    bad = [l for l in lines if not cpu.match(l)]  # the pattern leaves no room for MFU or device memory
    check(lines and not bad, f"CPU progress lines: tok/s, rss, ETA, no MFU or device memory ({(bad or lines)[0]})")
    rss = [float(x) for x in re.findall(r"\| rss ([0-9.]+) GiB", out)]
    check(rss and all(0.005 < x < 8 for x in rss), f"rss is a plausible resident size ({rss[:3]} GiB)")
    evals = re.findall(r"^eval at step (\d+): val_loss ([0-9.]+) over (\d+) tokens \(([0-9.]+) s; (\S+) /eval\)$", out, re.M)
    metrics = os.path.join(run, "metrics.h5")
    check([int(e[0]) for e in evals] == [20, 40] and all(e[4] == metrics for e in evals),
          f"eval lines say how long they took and where they wrote ({evals[:1]})")
    check(re.search(rf"^checkpoint: {re.escape(run)}/checkpoint-{STEPS:06d} \([0-9.]+ s\)$", out, re.M) is not None,
          "the checkpoint line names the directory and its time")
    return evals


def check_summary(text, run, what, evals_h5):
    steps, loss = evals_h5
    i = min(range(len(loss)), key=lambda k: loss[k])
    m = re.search(r"^run summary: (\S+)\n  steps: (\d+) of (\d+) \((\d+) skipped\), (\d+) tokens, .* of training steps$",
                  text, re.M)
    check(m is not None and m.group(1) == run and m.groups()[1:] == (str(STEPS), str(STEPS), "0", str(STEPS * GLOBAL_TOKENS)),
          f"{what}: steps {STEPS} of {STEPS}, 0 skipped, {STEPS * GLOBAL_TOKENS} tokens ({m.group(0) if m else text[:300]})")
    b = re.search(r"^  best eval loss: ([0-9.]+) at step (\d+) \((\d+) evaluations", text, re.M)
    check(b is not None and int(b.group(2)) == steps[i] and abs(float(b.group(1)) - loss[i]) < 6e-5 and int(b.group(3)) == 2,
          f"{what}: best eval loss {loss[i]:.4f} at step {steps[i]} of 2 evaluations ({b.group(0) if b else ''})")
    kept = sorted(d for d in os.listdir(run) if re.fullmatch(r"checkpoint-\d+", d))
    k = re.search(r"^  checkpoints kept: (.*)$", text, re.M)
    check(k is not None and k.group(1) == ", ".join(kept) + " (latest)" and open(os.path.join(run, "latest")).read().strip() == kept[-1],
          f"{what}: checkpoints kept {kept} ({k.group(1) if k else ''})")
    check(f"  final model: {run}/final (HF checkpoint" in text and f"  plots: {run}/plots/" in text,
          f"{what}: where the final model and the plots are")
    check(f"gemmatron train --config {run}/config.yaml --run-dir {run} --set train.steps={2 * STEPS}" in text,
          f"{what}: the command that continues the run")


def check_export(out, model, export):
    listed = {}
    for line in out.splitlines():
        m = re.fullmatch(r"(model\.\S+) (\w+) \[([0-9, ]*)\]", line)
        if m:
            listed[m.group(1)] = (m.group(2), tuple(int(x) for x in m.group(3).split(",") if x.strip()))
    want = {k: v[1] for k, v in dir_tensors(model).items()}
    got = dir_tensors(export)
    check(len(want) == 20 and {k: v[1] for k, v in got.items()} == want,
          f"the export holds the model's {len(want)} tensors with their shapes")
    check(all(v[0] == "BF16" for v in got.values()), "the export is BF16")
    check(listed == got, f"the block's safetensors listing is the export's ({len(listed)} tensors)")


def check_plots(run):
    for stem in ("loss", "lr", "throughput", "grad_norm"):
        ok, what = png_ok(os.path.join(run, "plots", stem + ".png"))
        check(ok, f"metrics.plot_every drew {what}")
    check(not os.path.exists(os.path.join(run, "plots", "fp8.png")), "no FP8 panel for a run without FP8")


def test_block(binary, tmp):
    block = quickstart_block()
    check(block is not None, "README.md has the marked quick-start block")
    if block is None:
        return None
    data, run = os.path.join(tmp, "chats.jsonl"), os.path.join(tmp, "runs", "quick")
    make_data(data)
    model = make_model(binary, tmp)
    values = {"MODEL": model, "TOKENIZER": "byte", "DATA": data, "CONFIG": make_config(tmp), "RUN": run,
              "GEMMATRON": binary}
    script = substitute(block, values)
    check(script is not None, f"the block sets each of {', '.join(NAMES)} exactly once")
    if script is None:
        return None
    path = os.path.join(tmp, "quickstart.sh")
    open(path, "w").write(script)
    # `python3` of the block is this interpreter (it has h5py, matplotlib, safetensors)
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    os.symlink(sys.executable, os.path.join(bindir, "python3"))
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
    env.pop("GEMMATRON_PYTHON", None)
    p = subprocess.run(["bash", "-euo", "pipefail", path], capture_output=True, text=True, env=env, timeout=900)
    check(p.returncode == 0, f"the quick start runs: exit {p.returncode} ({p.stderr.strip()[-600:]})")
    if p.returncode:
        print(p.stdout[-3000:])
        return None
    check("warning" not in p.stderr, f"no warning ({p.stderr.strip()[-300:]})")
    check_progress(p.stdout, run)
    with h5py.File(os.path.join(run, "metrics.h5"), "r", libver="latest", swmr=True) as f:
        loss = list(f["train"]["loss"][:])
        ev = (list(f["eval"]["step"][:]), list(f["eval"]["loss"][:]))
        check(f.attrs["on_host"] == 1 and f.attrs["device"] == "cpu", "metrics.h5 says it ran on the host CPU")
    check(len(loss) == STEPS and sum(loss[-5:]) / 5 < loss[0] - 1.5,
          f"the training loss fell: {loss[0]:.3f} -> {sum(loss[-5:]) / 5:.3f} (mean of the last 5)")
    check(ev[1][-1] < ev[1][0] - 0.3, f"the eval loss fell: {ev[1][0]:.3f} -> {ev[1][-1]:.3f}")
    parts = p.stdout.split("run summary: ")
    check(len(parts) == 3, "train and inspect each print one run summary")
    if len(parts) == 3:
        check_summary("run summary: " + parts[1], run, "train's summary", ev)
        check_summary("run summary: " + parts[2], run, "inspect's summary", ev)
    check_export(p.stdout, model, run + "-hf")
    check_plots(run)
    return run


def test_compare(binary, tmp, run):
    """A short FP8 run on the same shards, overlaid on the quick-start run."""
    fp8 = os.path.join(tmp, "runs", "fp8")
    p = subprocess.run([binary, "train", "--config", os.path.join(run, "config.yaml"), "--run-dir", fp8,
                        "--set", "train.steps=8", "--set", "optim.warmup_steps=2", "--set", "train.eval_every=4", "--set", "fp8.enabled=true",
                        "--set", "fp8.log_every=2", "--set", "train.quiet=true", "--set", "metrics.plot_every=0"],
                       capture_output=True, text=True, timeout=600)
    check(p.returncode == 0, f"an FP8 run of 8 steps ({p.stderr.strip()[-300:]})")
    out = os.path.join(tmp, "compare")
    q = subprocess.run([sys.executable, "scripts/plot_metrics.py", run, fp8, "--label", "BF16", "--label", "FP8",
                        "-o", out], capture_output=True, text=True, timeout=300)
    check(q.returncode == 0 and "FP8 amax/scale of 24 tensors" in q.stdout,
          f"plot_metrics.py overlays two runs ({q.stdout.strip()[:300]}{q.stderr.strip()[-300:]})")
    for stem in ("loss", "lr", "throughput", "grad_norm", "fp8"):
        ok, what = png_ok(os.path.join(out, stem + ".png"))
        check(ok and os.path.join(out, stem + ".png") in q.stdout, f"overlay {what}")


def short_run(binary, tmp, name, env, steps=4, extra=()):
    run = os.path.join(tmp, "runs", name)
    return run, subprocess.Popen(
        [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, "--set", f"train.steps={steps}",
         "--set", "optim.warmup_steps=1", "--set", "train.eval_every=0", "--set", "train.quiet=true",
         "--set", "metrics.plot_every=1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, **env))


def test_no_plotting(binary, tmp):
    exit3 = os.path.join(tmp, "no_matplotlib.py")
    open(exit3, "w").write("import sys\nprint('no matplotlib here', file=sys.stderr)\nsys.exit(3)\n")
    cases = [("nopython", {"GEMMATRON_PYTHON": "/nonexistent/python3"}, "cannot run /nonexistent/python3"),
             ("nomatplotlib", {"GEMMATRON_PYTHON": sys.executable, "GEMMATRON_PLOT_SCRIPT": exit3},
              "lacks h5py or matplotlib")]
    for name, env, says in cases:
        run, proc = short_run(binary, tmp, name, env)
        out, err = proc.communicate(timeout=300)
        warns = [l for l in err.splitlines() if "metrics.plot_every" in l]
        check(proc.returncode == 0 and len(warns) == 1 and says in warns[0] and "run summary:" in out,
              f"{name}: one warning line, the run succeeds ({err.strip()[-300:]})")


def test_reaped(binary, tmp):
    """A redraw every step with a plot script that takes a moment: the children never pile up."""
    slow = os.path.join(tmp, "slow_plot.py")
    open(slow, "w").write("import time\ntime.sleep(0.05)\n")
    run, proc = short_run(binary, tmp, "reaped", {"GEMMATRON_PYTHON": sys.executable, "GEMMATRON_PLOT_SCRIPT": slow},
                          steps=20)
    worst, children_seen = 0, 0
    while proc.poll() is None:
        r = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "stat="], capture_output=True, text=True)
        states = r.stdout.split()
        children_seen = max(children_seen, len(states))
        worst = max(worst, sum(s.startswith("Z") for s in states))
        time.sleep(0.01)
    proc.communicate()
    check(proc.returncode == 0 and children_seen == 1,  # a zombie is one of the children counted
          f"plot children: at most one at a time, at most one unreaped (seen {children_seen}, zombies {worst})")


def test_ctrl_c(binary, tmp):
    """Ctrl-C at the terminal (SIGINT to the process group) while a plot is being drawn: the run
    checkpoints and exits 75, the plot child (a group of its own) is not killed halfway, and the
    summary ends with the command that resumes the run."""
    import signal
    slow = os.path.join(tmp, "slower_plot.py")
    open(slow, "w").write("import time\ntime.sleep(0.5)\n")
    run = os.path.join(tmp, "runs", "ctrl-c")
    proc = subprocess.Popen(
        [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, "--set", "train.steps=100000",
         "--set", "train.eval_every=0", "--set", "train.quiet=true", "--set", "metrics.plot_every=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=dict(os.environ, GEMMATRON_PYTHON=sys.executable, GEMMATRON_PLOT_SCRIPT=slow))
    time.sleep(4)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    check(proc.returncode == 75 and "warning" not in err,
          f"Ctrl-C while plotting: exit 75, no plot failure ({proc.returncode}, {err.strip()[-300:]})")
    check(f"  resume: gemmatron train --config {run}/config.yaml --run-dir {run}" in out,
          f"the stopped run's summary says how to resume it ({out.strip()[-300:]})")


def main():
    binary = os.path.abspath(sys.argv[1])
    try:
        import matplotlib  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as e:
        sys.exit(f"test_quickstart: {e.name} is missing (bash scripts/install-deps.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="gt-quickstart-")
    try:
        run = test_block(binary, tmp)
        if run:
            test_compare(binary, tmp, run)
        test_no_plotting(binary, tmp)
        test_reaped(binary, tmp)
        test_ctrl_c(binary, tmp)
    finally:
        subprocess.run(["rm", "-rf", tmp])
    print(f"{len(PASSED)} passed, {len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
