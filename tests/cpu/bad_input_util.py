"""Helpers of the bad-input tests (tests/cpu/test_*.py): run gemmatron, edit a safetensors file."""
import json
import shutil
import struct
import subprocess
import sys
import tempfile


def run(args, **kw):
    """Runs the command; returns (exit status, stdout, stderr)."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    return p.returncode, p.stdout, p.stderr


def read_st(path):
    """(header dict, data bytes) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_st(path, header, data):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def fixture_copy(name):
    """A scratch copy of tests/fixtures/NAME; returns its directory (removed by the caller)."""
    tmp = tempfile.mkdtemp()
    shutil.copytree(f"tests/fixtures/{name}", f"{tmp}/{name}")
    return tmp, f"{tmp}/{name}"


class Checks:
    def __init__(self):
        self.fails = 0

    def check(self, name, ok, detail=""):
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else f"\n     {detail}"))
        self.fails += not ok

    def exit(self):
        sys.exit(1 if self.fails else 0)


def token_ids(path, n=40):
    """A whitespace-separated token file of n ids that every fixture's vocabulary holds."""
    with open(path, "w") as f:
        f.write(" ".join(str(i % 150 + 3) for i in range(n)) + "\n")
    return path


def eval_cpu(bin_, model, ids):
    """`gemmatron eval` of model on ids on the CPU: (exit status, stdout, stderr)."""
    return run([bin_, "eval", "--model", model, "--data", ids, "--device", "cpu"])
