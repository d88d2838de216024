"""Each `train` killed while metrics.h5 is open leaves it marked open; the next run sets it aside as
metrics.h5.crashed-* and copies its rows. Only the newest 3 of those files are kept, however often
the job is killed (argv[1] = gemmatron): 5 kills -9 leave exactly 3, the newest ones, and a finished
run after them still leaves 3."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from bad_input_util import Checks, run

bin_ = sys.argv[1]
c = Checks()
tmp = tempfile.mkdtemp()
rd = f"{tmp}/run"
BASE = [bin_, "train", "--config", "configs/tiny-cpu.yaml", "--run-dir", rd, "--set", "train.eval_every=0",
        "--set", "train.log_every=1", "--set", "optim.warmup_steps=0", "--set", "train.save_final=false"]
TRAIN = BASE + ["--set", "train.steps=100000"]
try:
    seen = []
    for k in range(5):
        p = subprocess.Popen(TRAIN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in p.stdout:  # metrics.h5 is open (SWMR) once the first step is logged
            if line.startswith("step 2/"):
                break
        p.send_signal(signal.SIGKILL)
        p.communicate()
        crashed = sorted(glob.glob(f"{rd}/metrics.h5.crashed-*"), key=os.path.getmtime)
        new = [f for f in crashed if f not in seen]
        seen += new
        c.check(f"after kill {k + 1}: {min(k, 3)} crashed file(s)", len(crashed) == min(k, 3), str(crashed))
    rc, out, err = run(BASE + ["--set", "train.steps=3"])
    crashed = sorted(glob.glob(f"{rd}/metrics.h5.crashed-*"), key=os.path.getmtime)
    seen += [f for f in crashed if f not in seen]
    c.check("a finished run after the kills: exit 0", rc == 0, err[-1500:])
    c.check("then exactly 3 crashed files, the newest", crashed == seen[-3:], f"{crashed} of {seen}")
    c.check("it says which old ones it removed", "only the newest 3 crashed metrics files are kept" in err, err[-1500:])
finally:
    shutil.rmtree(tmp)
c.exit()
