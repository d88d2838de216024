#!/usr/bin/env python3
"""Summarizes training runs from their RUN_DIR/metrics.h5 and compares them with the first one
(scripts/gpu_finetune.sh). Needs h5py and numpy.

  python3 scripts/gpu_compare_runs.py A/metrics.h5 [B/metrics.h5 ...] [--labels bf16,fp8] [--target 0.01]

One line per run: steps, first and final train loss, mean loss of the last --last steps,
validation losses, median tokens/s and MFU (of the steps after the first), GPU memory, and, for FP8
runs, the range of the newest amaxes and scales (/fp8). Then for every run after the first, against
the first: relative difference of the final loss, of the last-steps mean and of the mean over all
common steps, the largest per-step relative difference, the relative difference of each common
validation loss, and PASS/FAIL of the final-loss difference against --target. A final loss below
0.5 gets a warning: near zero (a memorized data set), a relative difference says little. The last line is `RESULT PASS` or `RESULT FAIL` (exit status 0 either way, 2 on bad input).
"""
import argparse
import sys


def load(path):
    import h5py
    import numpy as np
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        t = {k: np.asarray(f["train"][k][:]) for k in f["train"]}
        e = {k: np.asarray(f["eval"][k][:]) for k in f["eval"]} if "eval" in f else {"step": [], "loss": []}
        fp8 = None
        if "fp8" in f and "step" in f["fp8"] and len(f["fp8"]["step"]):
            fp8 = {k: np.asarray(f["fp8"][k][:]) for k in ("step", "amax", "scale")}
    return t, e, fp8


def summary(label, t, e, fp8, last):
    import numpy as np
    loss, n = t["loss"], len(t["loss"])
    later = slice(1, None) if n > 1 else slice(None)  # the first step also warms up
    evals = ", ".join(f"{int(s)}: {v:.4f}" for s, v in zip(e["step"], e["loss"])) or "none"
    line = (f"{label}: {n} steps (last {int(t['step'][-1])}), train loss first {loss[0]:.4f} final {loss[-1]:.4f} "
            f"(mean of last {min(last, n)}: {loss[-last:].mean():.4f}); val loss at {evals}; "
            f"{np.median(t['tokens_per_s'][later]):,.0f} tok/s, MFU {100 * np.median(t['mfu'][later]):.1f}% "
            f"(medians), mem {t['gpu_mem_gib'].max():.1f} GiB")
    if "grad_norm" in t:
        line += f", non-finite grad norms {int((~np.isfinite(t['grad_norm'])).sum())}"
    if fp8 is not None:
        a, s = fp8["amax"][-1], fp8["scale"][-1]
        line += (f"; FP8 at step {int(fp8['step'][-1])}: amax {a[a > 0].min() if (a > 0).any() else 0:.3g}.."
                 f"{a.max():.3g}, scale {s.min():.3g}..{s.max():.3g} over {a.size} tensors")
    print(line)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", nargs="+", help="metrics.h5 files; the first is the reference")
    p.add_argument("--labels", default=None, help="comma-separated names of the runs")
    p.add_argument("--target", type=float, default=0.01, help="allowed relative difference of the final loss")
    p.add_argument("--last", type=int, default=20, help="steps in the 'mean of the last steps'")
    a = p.parse_args(argv)
    labels = a.labels.split(",") if a.labels else [f"run{i}" for i in range(len(a.metrics))]
    if len(labels) != len(a.metrics):
        sys.exit(2)
    import numpy as np
    runs = []
    for label, path in zip(labels, a.metrics):
        try:
            runs.append(load(path))
        except (OSError, KeyError) as err:
            print(f"{label}: {path}: cannot read ({err})")
            print("RESULT FAIL")
            return 2
        summary(label, *runs[-1], a.last)
    ok = True
    ref_t, ref_e = runs[0][0], runs[0][1]
    for label, (t, e, _) in zip(labels[1:], runs[1:]):
        common, i_ref, i = np.intersect1d(ref_t["step"], t["step"], return_indices=True)
        if len(common) == 0:
            print(f"{label} vs {labels[0]}: no common steps")
            ok = False
            continue
        lr, lo = ref_t["loss"][i_ref], t["loss"][i]
        final = abs(lo[-1] - lr[-1]) / abs(lr[-1])
        k = min(a.last, len(common))
        mean = abs(lo[-k:].mean() - lr[-k:].mean()) / abs(lr[-k:].mean())
        per_step = np.abs(lo - lr) / np.abs(lr)
        worst = int(np.argmax(per_step))
        passed = final <= a.target
        ok = ok and passed
        whole = abs(lo.mean() - lr.mean()) / abs(lr.mean())
        print(f"{label} vs {labels[0]} over {len(common)} common steps: final loss {lo[-1]:.4f} vs {lr[-1]:.4f}, "
              f"rel diff {100 * final:.3f}% (target {100 * a.target:g}%: {'PASS' if passed else 'FAIL'}); mean of last "
              f"{k} rel diff {100 * mean:.3f}%; mean of all rel diff {100 * whole:.3f}%; largest per-step rel diff "
              f"{100 * per_step[worst]:.3f}% at step {int(common[worst])}")
        ev, j_ref, j = np.intersect1d(ref_e["step"], e["step"], return_indices=True)
        if len(ev):
            print(f"{label} vs {labels[0]} validation loss: " + ", ".join(
                f"step {int(s)}: {e['loss'][b]:.4f} vs {ref_e['loss'][r]:.4f} "
                f"({100 * abs(e['loss'][b] - ref_e['loss'][r]) / abs(ref_e['loss'][r]):.2f}%)"
                for s, r, b in zip(ev, j_ref, j)))
        if min(lo[-1], lr[-1]) < 0.5:
            print(f"warning: final loss {min(lo[-1], lr[-1]):.4f} is near zero (the data memorized): its relative "
                  f"difference is dominated by the last digits; see the means and the validation losses")
    print(f"RESULT {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
