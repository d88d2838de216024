"""`gemmatron train` end to end on the CPU (argv[1] = the binary), on the bundled tiny model and data:
  - the loss starts at ln(259) (HF's random init predicts nearly uniformly) and clearly falls;
  - the progress lines on the CPU show tokens/s, the host RSS and the ETA, and no MFU or GPU memory;
  - metrics.h5 (read with h5py) has the datasets and lengths of DESIGN.md §5, the lr column equals
    the schedule computed here, flops_per_token equals the Megatron formula computed here, and the
    config attribute is RUN_DIR/config.yaml, which loads back with the overrides applied;
  - scripts/plot_metrics.py renders it (when matplotlib is installed);
  - the exported final model, scored by `gemmatron eval` on the same validation sequences, gives the
    trainer's own final evaluation;
  - a second run into the same directory continues metrics.h5 from step 0 (older rows dropped);
  - metrics.h5 is readable with SWMR while a run is still writing it, and grows;
  - config errors on the command line: exit 1, one line on stderr naming the key, no run directory."""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import h5py
import yaml

FAILS, PASSED = [], []
TRAIN_COLS = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "step_time_s", "gpu_mem_gib"}
SMALL = ["--set", "data.seq_len=64", "--set", "data.micro_batch=2", "--set", "data.grad_accum=2",
         "--set", "optim.warmup_steps=5", "--set", "train.eval_steps=4"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def train(binary, run_dir, *extra, timeout=900):
    cmd = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run_dir, *SMALL, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def lr_at(step, peak=3e-3, warmup=5, steps=40, ratio=0.1):
    """cosine after linear warmup, as documented in train/lr_schedule.h"""
    if step <= warmup:
        return peak * step / warmup
    p = (step - warmup) / (steps - warmup)
    lo = peak * ratio
    return lo + (peak - lo) * 0.5 * (1 + math.cos(math.pi * p))


def flops_per_token(seq):
    c = json.load(open("configs/hf/tiny/config.json"))
    C, F, L, H, K, D, V = (c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"],
                           c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["vocab_size"])
    per_layer = C * (H * D + 2 * K * D) + H * D * C + 3 * C * F
    return 6 * (L * per_layer + V * C) + 6 * L * H * D * seq


def open_swmr(path):
    return h5py.File(path, "r", libver="latest", swmr=True)


def test_run(binary, tmp):
    run = os.path.join(tmp, "run")
    p = train(binary, run, "--set", "train.steps=40", "--set", "train.eval_every=20")
    check(p.returncode == 0, f"tiny fine-tune exits 0 (stderr: {p.stderr.strip()[-500:]})")
    if p.returncode:
        return None
    last = p.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"eval_loss=([0-9.]+) tokens=(\d+)", last)
    check(m is not None, f"last line is eval_loss=... tokens=... ({last})")
    steps_logged = re.findall(r"^step (\d+)/40 \| loss ([0-9.]+) \| lr", p.stdout, re.M)
    check([int(s) for s, _ in steps_logged] == [1, 10, 20, 30, 40], f"progress lines at steps 1,10,20,30,40")
    progress = [l for l in p.stdout.splitlines() if l.startswith("step ")]
    cpu_line = re.compile(r"step \d+/40 \| loss [0-9.]+ \| lr \S+ \| grad_norm \S+ \| \d+ tok/s \| rss [0-9.]+ GiB \| ETA \w+")
    check(progress and all(cpu_line.fullmatch(l) for l in progress),
          f"CPU progress lines: tok/s, host rss and ETA, no MFU or GPU memory ({progress[:1]})")

    with open_swmr(os.path.join(run, "metrics.h5")) as f:
        check(set(f["train"].keys()) == TRAIN_COLS and set(f["eval"].keys()) == {"step", "loss"} and "fp8" in f,
              f"datasets /train {sorted(f['train'].keys())}, /eval, /fp8")
        lens = {k: len(f["train"][k]) for k in TRAIN_COLS}
        check(set(lens.values()) == {40}, f"every /train dataset has 40 rows: {lens}")
        check(list(f["train"]["step"][:]) == list(range(1, 41)), "/train/step is 1..40")
        check(list(f["eval"]["step"][:]) == [20, 40], f"/eval/step is [20, 40]: {list(f['eval']['step'][:])}")
        loss = f["train"]["loss"][:]
        check(abs(loss[0] - math.log(259)) < 0.1, f"first loss {loss[0]:.4f} is ln(259) = {math.log(259):.4f}")
        tail = sum(loss[-5:]) / 5
        check(tail < loss[0] - 1.5, f"loss falls: {loss[0]:.3f} -> {tail:.3f} (mean of the last 5)")
        ev = f["eval"]["loss"][:]
        check(ev[1] < ev[0] < math.log(259) - 1.0, f"eval loss falls: {list(ev)}")
        check(m is not None and abs(float(m.group(1)) - ev[1]) < 1e-5, "the final eval_loss line is /eval/loss[-1]")
        lr = f["train"]["lr"][:]
        worst = max(abs(lr[i] - lr_at(i + 1)) / lr_at(i + 1) for i in range(40))
        check(worst < 1e-12, f"/train/lr follows warmup + cosine (worst rel err {worst:.1e})")
        gn, tps, mfu = f["train"]["grad_norm"][:], f["train"]["tokens_per_s"][:], f["train"]["mfu"][:]
        check(all(g > 0 and math.isfinite(g) for g in gn) and all(t > 0 for t in tps),
              "grad_norm finite and positive, tokens_per_s positive")
        fpt = flops_per_token(64)
        check(abs(f.attrs["flops_per_token"] - fpt) < 1e-6 * fpt, f"flops_per_token {f.attrs['flops_per_token']} = {fpt}")
        check(all(abs(mfu[i] - tps[i] * fpt / 989e12) <= 1e-9 * mfu[i] for i in range(40)),
              "mfu = tokens_per_s x flops_per_token / 989e12")
        check(all(x == 0 for x in f["train"]["gpu_mem_gib"][:]), "gpu_mem_gib is 0 on the CPU")
        check(f.attrs["on_host"] == 1 and f.attrs["device"] == "cpu", "attributes on_host 1 and device 'cpu'")
        check(f.attrs["grid"] == "dp=1 tp=1" and f.attrs["version"].startswith("gemmatron"), "grid and version attributes")
        config_text = open(os.path.join(run, "config.yaml")).read()
        check(f.attrs["config"] == config_text, "the config attribute is RUN_DIR/config.yaml")
    cfg = yaml.safe_load(config_text)
    check(cfg["data"]["seq_len"] == 64 and cfg["optim"]["lr"] == 0.003 and cfg["run_dir"] == run,
          "RUN_DIR/config.yaml holds the overrides")
    return run, float(m.group(1)), int(m.group(2))


def write_shard(path, ids, attrs, vocab):
    with open(path, "wb") as f:
        f.write(b"GTTOKENS" + struct.pack("<IIQI", 1, 1, len(ids), vocab) + bytes(36))
        f.write(struct.pack(f"<{len(ids)}I", *ids))
        f.write(bytes(attrs))


def test_export(binary, tmp, run, loss, tokens):
    """The trainer evaluated the first 4 micro-batches of 2 sequences of 64 tokens of val.bin."""
    with open("data/demo/val.bin", "rb") as f:
        b = f.read()
    n = struct.unpack_from("<Q", b, 16)[0]
    ids = struct.unpack_from(f"<{n}I", b, 64)
    attrs = b[64 + 4 * n:]
    cut = os.path.join(tmp, "val-512.bin")
    write_shard(cut, ids[:512], attrs[:512], 259)
    p = subprocess.run([binary, "eval", "--model", os.path.join(run, "final"), "--data", cut,
                        "--seq-len", "64", "--device", "cpu"], capture_output=True, text=True)
    m = re.search(r"eval_loss=([0-9.]+) tokens=(\d+)", p.stdout)
    ok = m is not None and int(m.group(2)) == tokens and abs(float(m.group(1)) - loss) < 2e-5 * loss
    check(ok, f"gemmatron eval of RUN_DIR/final on the same sequences: {m.group(0) if m else p.stderr.strip()}"
              f" vs the trainer's eval_loss={loss:.6f} tokens={tokens}")


def test_plot(run):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("skip plot_metrics.py: matplotlib is not installed (an optional dependency)")
        return
    png = os.path.join(run, "plot.png")
    p = subprocess.run([sys.executable, "scripts/plot_metrics.py", os.path.join(run, "metrics.h5"), "-o", png],
                       capture_output=True, text=True)
    ok = p.returncode == 0 and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 20000
    check(ok, f"plot_metrics.py renders a PNG ({p.stdout.strip()}{p.stderr.strip()})")


def test_rerun(binary, run):
    p = train(binary, run, "--set", "train.steps=5", "--set", "train.quiet=true", "--set", "train.save_final=false",
              "--set", "checkpoint.resume=false")
    check(p.returncode == 0 and not re.search(r"^step ", p.stdout, re.M) and "eval_loss=" in p.stdout,
          f"quiet run: no progress lines, a final eval line ({p.stdout.strip()[-200:]})")
    with open_swmr(os.path.join(run, "metrics.h5")) as f:
        check(list(f["train"]["step"][:]) == [1, 2, 3, 4, 5] and len(f["train"]["loss"]) == 5 and
              list(f["eval"]["step"][:]) == [5], "a new run into the same directory restarts metrics.h5 at step 0")
        check("steps: 5" in f.attrs["config"], "the config attribute is the new run's")


def test_live(binary, tmp):
    run = os.path.join(tmp, "live")
    cmd = [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, *SMALL,
           "--set", "train.steps=100000", "--set", "train.quiet=true", "--set", "train.eval_every=0",
           "--set", "data.val=[]", "--set", "optim.warmup_steps=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    path = os.path.join(run, "metrics.h5")
    try:
        deadline = time.time() + 120
        first = None
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(path):
                try:
                    f = open_swmr(path)
                    ds = f["train"]["step"]
                    ds.refresh()
                    if len(ds) > 0:
                        first = len(ds)
                        break
                    f.close()
                except OSError:
                    pass  # created but SWMR not started yet
            time.sleep(0.2)
        check(first is not None, f"metrics.h5 opened with SWMR while the run writes it ({first} rows)")
        if first is None:
            return
        grown = first
        while time.time() < deadline and grown < first + 3:
            time.sleep(0.3)
            ds.refresh()
            grown = len(ds)
        f["train"]["loss"].refresh()
        rows = len(ds)
        steps = list(ds[:rows])
        losses = f["train"]["loss"][:rows]
        check(grown >= first + 3, f"the reader sees new rows: {first} -> {grown}")
        check(steps == list(range(1, rows + 1)) and len(f["train"]["loss"]) >= rows and
              all(math.isfinite(x) for x in losses), "rows read mid-run are complete: step 1..n, n finite losses")
        check(proc.poll() is None, "the run was still going while read")
        f.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_cli_errors(binary, tmp):
    cases = [
        (["--set", "optim.lrr=1"], "optim.lrr"),
        (["--set", "optim.lr=fast"], "optim.lr"),
        (["--set", "optim.beta2=2"], "optim.beta2"),
        (["--set", "data.seq_len=100000"], "data.seq_len"),
        (["--set", "data.micro_batch=0"], "data.micro_batch"),
        (["--set", "optim.lr"], "expected key=value"),
        (["--set", "parallel.tp=2"], "parallel.tp"),
        (["--set", "model.path=configs/hf/tiny"], "model.path"),
        (["--set", "data.train=[]"], "data.train"),
        (["--set", "data.val=nothing-*.bin"], "data.val"),
        (["--set", "train.eval_every=10", "--set", "data.val=[]"], "train.eval_every"),
    ]
    for args, key in cases:
        run = os.path.join(tmp, "never")
        p = subprocess.run([binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, *args],
                           capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        ok = (p.returncode == 1 and len(lines) == 1 and lines[0].startswith("gemmatron: ") and key in lines[0]
              and not os.path.exists(run))
        check(ok, f"{' '.join(args)} -> exit {p.returncode}: {p.stderr.strip()}")
    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("model:\n  config: configs/hf/tiny\noptim:\n  learning_rate: 1e-3\n")
    p = subprocess.run([binary, "train", "--config", bad], capture_output=True, text=True)
    check(p.returncode == 1 and f"{bad}: line 4: unknown key 'optim.learning_rate'" in p.stderr,
          f"unknown key in the file names file, line and key: {p.stderr.strip()}")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt_train_e2e_")
    try:
        res = test_run(binary, tmp)
        if res:
            test_export(binary, tmp, *res)
            test_plot(res[0])
            test_rerun(binary, res[0])
        test_live(binary, tmp)
        test_cli_errors(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"train_e2e: {len(PASSED)} passed, {len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
