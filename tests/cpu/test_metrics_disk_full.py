"""A full disk while metrics.h5 is written (argv[1] = gemmatron): `train` stops with exit 1 and one
line naming metrics.h5 and the system's reason, with no HDF5 error stack, no "infinite loop closing
library" and no crash at exit. As root where a tmpfs can be mounted, on a small tmpfs (ENOSPC); in
every case also under a file size limit (RLIMIT_FSIZE with SIGXFSZ ignored: EFBIG). Two sizes each:
full at the file's creation and full after some steps."""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

from bad_input_util import Checks, run

bin_ = sys.argv[1]
c = Checks()
tmp = tempfile.mkdtemp()
TRAIN = ["train", "--config", "configs/tiny-cpu.yaml", "--set", "train.steps=30", "--set", "train.save_final=false",
         "--set", "train.eval_every=0"]


def check_one_line(what, rc, out, err, reason):
    lines = [l for l in err.splitlines() if l.startswith("gemmatron: ") and "warning" not in l]
    c.check(f"{what}: exit 1", rc == 1, f"rc={rc} {err[-2000:]!r}")
    c.check(f"{what}: one error line naming metrics.h5 and '{reason}'",
            len(lines) == 1 and "metrics.h5" in lines[0] and reason in lines[0] and len(lines[0]) < 400,
            "\n".join(lines)[-2000:])
    c.check(f"{what}: no HDF5 error stack or shutdown noise",
            "infinite loop" not in err and "HDF5-DIAG" not in err and "FL,FL" not in err and "time =" not in err,
            err[-2000:])


def limit_fsize(kib):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))
    return pre


try:
    for kib in (8, 24):
        rd = f"{tmp}/fsize{kib}"
        rc, out, err = run([bin_] + TRAIN + ["--run-dir", rd], preexec_fn=limit_fsize(kib))
        check_one_line(f"file size limit {kib} KiB", rc, out, err, "File too large")

    mnt = f"{tmp}/mnt"
    os.mkdir(mnt)
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", mnt],
                                                   capture_output=True).returncode == 0
    if not mounted:
        print("skip tmpfs: needs root and permission to mount (the file size limit above covers the same path)")
    else:
        try:
            for kib in (16, 28):
                subprocess.run(["mount", "-o", f"remount,size={kib}k", mnt], check=True)
                rc, out, err = run([bin_] + TRAIN + ["--run-dir", f"{mnt}/r{kib}"])
                check_one_line(f"tmpfs of {kib} KiB", rc, out, err, "No space left on device")
                shutil.rmtree(f"{mnt}/r{kib}")
        finally:
            subprocess.run(["umount", mnt], check=True)
finally:
    shutil.rmtree(tmp)
c.exit()
