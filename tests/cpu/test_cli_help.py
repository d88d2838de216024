"""The command line that helps (argv[1] = the gemmatron binary; CTest sets GT_BUILD_TYPE,
GT_CUDA_BUILT and GT_CMAKE):
  - `gemmatron --version` and `gemmatron version`: the version, the git commit of this tree (with
    "-dirty" exactly when git sees changes; "unknown" without a checkout), the build type, and the
    CUDA/NCCL versions compiled in or "CPU only" when the CUDA backend was not built;
  - cmake/build_info.cmake itself, outside a checkout ("unknown") and in a scratch git repository
    (its commit, "-dirty" after a change);
  - `gemmatron help` / `--help` list every command; `help CMD`, `CMD --help` and `CMD -h` print the
    same help, with every option of the command (each with its default or "(required)") and examples;
  - bad command lines: exit 2 and one stderr line that names the option (and the bad value), e.g.
    "train: unknown option '--foo' (see gemmatron train --help)".
The option lists below are the ones scripts, tests and README use: one missing from a help fails."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAILS, PASSED = [], []

# Every option of every command, as scripts/ and the README spell them.
OPTIONS = {
    "train": ["--config", "--set", "--run-dir", "--resume"],
    "eval": ["--model", "--data", "--seq-len", "--tp", "--device", "--logits"],
    "bench": ["--model", "--batch", "--seq", "--steps", "--warmup", "--tp", "--device", "--accum", "--fp8",
              "--fp8-lm-head", "--no-tp-overlap", "--profile"],
    "export": ["--checkpoint", "--out", "--dtype", "--max-shard-size"],
    "inspect": ["DIR"],
}
FLAGS = {"--fp8", "--fp8-lm-head", "--no-tp-overlap", "--profile"}


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    (PASSED if ok else FAILS).append(what)


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def git(*args, cwd="."):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def expected_commit():
    """What build_info.cmake sees in this tree: HEAD's short hash (+ -dirty), or unknown."""
    if not shutil.which("git") or not os.path.exists(".git"):
        return "unknown"
    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def test_version(binary):
    r, v = run(binary, "--version"), run(binary, "version")
    check(r.returncode == 0 and v.returncode == 0 and r.stdout == v.stdout,
          f"--version and version: exit 0, the same text (exit {r.returncode}, {v.returncode})")
    lines = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines()[1:] if ": " in line)
    first = r.stdout.splitlines()[0] if r.stdout else ""
    check(re.fullmatch(r"gemmatron \d+\.\d+\.\d+", first) is not None, f"version line: '{first}'")
    want = expected_commit()
    check(lines.get("commit") == want, f"commit: '{lines.get('commit')}', git says '{want}'")
    build_type = os.environ.get("GT_BUILD_TYPE", "")
    check(build_type != "" and lines.get("build type") == build_type,
          f"build type: '{lines.get('build type')}' (CMake: '{build_type}')")
    backend = lines.get("compiled with", "")
    if os.environ.get("GT_CUDA_BUILT", "OFF") == "ON":
        ok = re.fullmatch(r"CUDA runtime \d+\.\d+, cuBLASLt \d+\.\d+\.\d+, (NCCL \d+\.\d+\.\d+|no NCCL), "
                          r"(cuDNN \d+\.\d+\.\d+|no cuDNN); CUDA architectures \S+", backend) is not None
    else:
        ok = backend.startswith("CPU only")
    check(ok, f"compiled with: '{backend}' (CUDA backend built: {os.environ.get('GT_CUDA_BUILT')})")


def build_info(src, out):
    """Runs cmake/build_info.cmake on src; returns the commit it wrote into out."""
    cmake = os.environ.get("GT_CMAKE", "cmake")
    subprocess.run([cmake, f"-DSRC={src}", f"-DOUT={out}", f"-DGIT={shutil.which('git') or ''}", "-DVERSION=9.9.9",
                    "-DBUILD_TYPE=Debug", "-P", os.path.abspath("cmake/build_info.cmake")], check=True,
                   capture_output=True)
    with open(out) as f:
        text = f.read()
    m = re.search(r'GT_BUILD_COMMIT "([^"]*)"', text)
    return m.group(1) if m else None, text


def test_build_info_script(tmp):
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    commit, text = build_info(src, os.path.join(tmp, "a.h"))
    check(commit == "unknown" and 'GT_BUILD_TYPE "Debug"' in text and 'GT_BUILD_VERSION "9.9.9"' in text,
          f"build_info.cmake without .git: commit '{commit}'")
    if not shutil.which("git"):
        check(True, "build_info.cmake in a git repository: skipped (no git)")
        return
    git("init", "-q", cwd=src)
    with open(os.path.join(src, "f.txt"), "w") as f:
        f.write("one\n")
    git("add", "f.txt", cwd=src)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one", cwd=src)
    head = git("rev-parse", "--short=12", "HEAD", cwd=src).stdout.strip()
    commit, _ = build_info(src, os.path.join(tmp, "b.h"))
    check(len(head) == 12 and commit == head, f"build_info.cmake at a clean commit: '{commit}' (HEAD {head})")
    with open(os.path.join(src, "f.txt"), "w") as f:
        f.write("two\n")
    before = os.path.getmtime(os.path.join(tmp, "b.h"))
    commit, _ = build_info(src, os.path.join(tmp, "b.h"))
    check(commit == head + "-dirty", f"build_info.cmake after a change: '{commit}'")
    os.utime(os.path.join(tmp, "b.h"), (before, before))
    build_info(src, os.path.join(tmp, "b.h"))
    check(os.path.getmtime(os.path.join(tmp, "b.h")) == before,
          "build_info.cmake leaves an unchanged header untouched (nothing recompiles)")


def test_command_list(binary):
    a, b = run(binary, "help"), run(binary, "--help")
    listed = all(re.search(rf"^  {c}\s", a.stdout, re.M) for c in [*OPTIONS, "version", "help"])
    check(a.returncode == 0 and b.returncode == 0 and a.stdout == b.stdout and listed and "--version" in a.stdout,
          "help and --help: exit 0, the same list of every command and --version")
    r = run(binary)
    check(r.returncode == 2 and "usage: gemmatron" in r.stderr, f"no command: exit {r.returncode} (2) and the usage")
    r = run(binary, "frobnicate")
    check(r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, f"unknown command: exit {r.returncode}")
    r = run(binary, "help", "frobnicate")
    check(r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr,
          f"help of an unknown command: exit {r.returncode}")


def option_line(help_text, opt):
    """The help's lines for opt, up to the next option, as one line."""
    m = re.search(rf"^  {re.escape(opt)}(?=\s).*?(?=^  \S|^\S|\Z)", help_text, re.M | re.S)
    return " ".join(m.group(0).split()) if m else None  # wrapped lines joined


def test_command_help(binary, cmd):
    runs = [run(binary, "help", cmd), run(binary, cmd, "--help"), run(binary, cmd, "-h")]
    text = runs[0].stdout
    check(all(r.returncode == 0 and r.stdout == text and r.stderr == "" for r in runs) and
          text.startswith(f"usage: gemmatron {cmd}"),
          f"{cmd}: help {cmd}, {cmd} --help, {cmd} -h: exit 0, the same help")
    usage = text.split("\n\n", 1)[0]
    for opt in OPTIONS[cmd]:
        block = option_line(text, opt)
        has_default = block is not None and ("(required)" in block or "(default: " in block)
        in_usage = re.search(rf"[\[ ]{re.escape(opt)}[ \]\n]", usage + "\n") is not None
        check(block is not None and in_usage and has_default,
              f"{cmd} --help: {opt} in the usage and described with its default")
    examples = text.split("\nexamples:\n", 1)[1] if "\nexamples:\n" in text else ""
    check(re.search(rf"^  (mpirun .*)?gemmatron {cmd}\b", examples, re.M) is not None, f"{cmd} --help: an example")


def test_help_first(binary):
    r = run(binary, "train", "--config", "configs/tiny-cpu.yaml", "--help")
    check(r.returncode == 0 and r.stdout.startswith("usage: gemmatron train"),
          "train --config X --help: the help, not a run")
    r = run(binary, "train", "--set", "-h")
    check(r.returncode == 2 and "--config FILE is required" in r.stderr,
          f"train --set -h: -h is --set's value, not help (exit {r.returncode}: {r.stderr.strip()})")


# (command line, what stderr must contain): every one exits 2 with one line.
BAD = [
    (["train", "--foo"], "train: unknown option '--foo' (see gemmatron train --help)"),
    (["train", "--config", "configs/tiny-cpu.yaml", "--foo", "bar"], "train: unknown option '--foo'"),
    (["train", "--set", "--run-dir", "X"], "train: option --set needs a value"),
    (["train", "--config", "configs/tiny-cpu.yaml", "--set"], "train: option --set needs a value"),
    (["train", "--run-dir"], "train: option --run-dir needs a value"),
    (["train", "configs/tiny-cpu.yaml"], "train: unexpected argument 'configs/tiny-cpu.yaml'"),
    (["train"], "train: --config FILE is required"),
    (["eval", "--model", "m", "--data", "d", "--seq-len", "abc"], "eval: --seq-len must be an integer >= 2, got 'abc'"),
    (["eval", "--model", "m", "--data", "d", "--tp", "0"], "eval: --tp must be an integer >= 1, got '0'"),
    (["eval", "--model", "m", "--data", "d", "--tp", "99999999999"], "eval: --tp must be at most"),
    (["eval", "--data", "d"], "eval: --model HF_DIR is required"),
    (["eval", "--model", "m", "--data"], "eval: option --data needs a value"),
    (["eval", "--bogus"], "eval: unknown option '--bogus' (see gemmatron eval --help)"),
    (["bench", "--model", "m", "--batch", "0"], "bench: --batch must be an integer >= 1, got '0'"),
    (["bench", "--model", "m", "--steps", "3x"], "bench: --steps must be an integer >= 1, got '3x'"),
    (["bench", "--model", "m", "--warmup", "-1"], "bench: --warmup must be an integer >= 0, got '-1'"),
    (["bench", "--model", "--fp8"], "bench: option --model needs a value"),
    (["bench", "--model", "m", "--fp9"], "bench: unknown option '--fp9'"),
    (["export", "--checkpoint", "c", "--out", "o", "--dtype", "int8"], "export: --dtype int8: expected bf16 or fp32"),
    (["export", "--checkpoint", "c", "--out", "o", "--max-shard-size", "lots"],
     "export: --max-shard-size lots: expected a size"),
    (["export", "--checkpoint", "c"], "export: --out HF_DIR is required"),
    (["export", "--out"], "export: option --out needs a value"),
    (["inspect"], "inspect: DIR is required"),
    (["inspect", "a", "b"], "inspect: unexpected argument 'b'"),
    (["inspect", "--all", "a"], "inspect: unknown option '--all'"),
    (["version", "--short"], "version: unknown option '--short'"),
]


def test_bad(binary):
    for args, want in BAD:
        r = run(binary, *args)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and want in lines[0] and r.stdout == "",
              f"{' '.join(args)}: exit {r.returncode} (2), '{r.stderr.strip()}'")


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="gt_cli_help_")
    test_version(binary)
    test_build_info_script(tmp)
    test_command_list(binary)
    for cmd in OPTIONS:
        test_command_help(binary, cmd)
    test_help_first(binary)
    test_bad(binary)
    print(f"cli_help: {len(PASSED)} passed, {len(FAILS)} failed")
    if not FAILS:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
