"""Stop signals of a single-process `gemmatron train` on configs/tiny-cpu.yaml (argv[1] = the binary):
  - SIGINT (Ctrl-C) and SIGHUP behave like SIGTERM: the step finishes, a checkpoint of it is written,
    exit 75; the same command again resumes from that checkpoint and finishes;
  - a second SIGINT ends the process at once, killed by SIGINT, without a checkpoint of the step;
  - a SIGHUP ignored when gemmatron starts (`nohup`) stays ignored."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FAILS, PASSED = [], []
SMALL = ["--set", "data.seq_len=64", "--set", "data.micro_batch=2", "--set", "data.grad_accum=2",
         "--set", "optim.warmup_steps=2", "--set", "train.eval_every=0", "--set", "train.log_every=1",
         "--set", "train.save_final=false", "--set", "checkpoint.every=0"]


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def command(binary, run, steps, *extra):
    return [binary, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", run, *SMALL, "--set",
            f"train.steps={steps}", *extra]


def signalled(binary, run, sigs, *extra, delay=0.0):
    """Starts a long run, sends sigs (delay s after step 3 is printed, 0.1 s apart); returns the exit
    status, the step named by "stopped by signal" (or -1) and stderr."""
    proc = subprocess.Popen(command(binary, run, 100000, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    sent, stopped = False, ""
    for line in proc.stdout:
        m = re.match(r"step (\d+)/", line)
        if m and int(m.group(1)) >= 3 and not sent:
            time.sleep(delay)
            for i, s in enumerate(sigs):
                if i:
                    time.sleep(0.1)
                proc.send_signal(s)
            sent = True
        if line.startswith("stopped by signal"):
            stopped = line
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    err = proc.stderr.read()
    m = re.search(r"after step (\d+)", stopped)
    return rc, int(m.group(1)) if m else -1, err


def test_stop(binary, tmp, sig, name):
    run = os.path.join(tmp, name)
    rc, step, _ = signalled(binary, run, [sig])
    ck = os.path.join(run, "checkpoint-%06d" % step)
    check(rc == 75 and step >= 3 and os.path.isdir(ck), f"{name}: step {step} finished, its checkpoint written, exit {rc} (75)")
    p = subprocess.run(command(binary, run, step + 2), capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and "resumed from " + ck in p.stdout and f"step {step + 2}/{step + 2}" in p.stdout,
          f"{name}: the same command again resumes from step {step} and finishes (exit {p.returncode})")


def test_double_interrupt(binary, tmp):
    run = os.path.join(tmp, "int2")
    # steps of about a second, so that the second Ctrl-C comes while the first one's step still runs
    rc, step, err = signalled(binary, run, [signal.SIGINT, signal.SIGINT], "--set", "data.seq_len=128", "--set",
                              "data.micro_batch=4", "--set", "data.grad_accum=8", delay=0.2)
    ckpts = [d for d in os.listdir(run) if d.startswith("checkpoint-")] if os.path.isdir(run) else []
    check(rc == -signal.SIGINT and step == -1 and not ckpts and "second interrupt" in err,
          f"second SIGINT: killed by SIGINT at once (exit {rc}), no checkpoint ({ckpts})")


def test_nohup(binary, tmp):
    run = os.path.join(tmp, "nohup")
    proc = subprocess.Popen(command(binary, run, 100000), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    n = 0
    for line in proc.stdout:
        if line.startswith("step "):
            n += 1
            if n == 3:
                proc.send_signal(signal.SIGHUP)
            if n == 8:
                break
    still = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    check(still and rc == 75, f"SIGHUP ignored at start (nohup) stays ignored: ran on, then SIGTERM -> exit {rc} (75)")


def main():
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gt-signals-")
    try:
        test_stop(binary, tmp, signal.SIGINT, "SIGINT")
        test_stop(binary, tmp, signal.SIGHUP, "SIGHUP")
        test_double_interrupt(binary, tmp)
        test_nohup(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"signals: {len(PASSED)} passed, {len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
