#!/usr/bin/env python3
"""Draws the curves of one or more runs' metrics.h5 (train/metrics/metrics.h) as PNG files: loss
(training and validation), learning rate, throughput (tokens/s, and MFU on GPUs), gradient norm, and
for FP8 runs the amaxes and scales of /fp8 per operand kind (input, weight, grad_output). Several
runs are overlaid on the same axes, one colour each (e.g. BF16 against FP8). Works while a run is
still writing its file (HDF5 SWMR).

  python3 scripts/plot_metrics.py RUN_DIR                      # RUN_DIR/plots/{loss,lr,throughput,grad_norm[,fp8]}.png
  python3 scripts/plot_metrics.py RUN_A RUN_B --label bf16 --label fp8 -o compare/   # overlaid
  python3 scripts/plot_metrics.py RUN_DIR/metrics.h5 -o metrics.png                  # every panel in one PNG

A run is given as its directory or its metrics.h5. -o DIR (default: RUN_DIR/plots for one run,
./plots for several) gets one PNG per panel; -o FILE.png gets one figure with every panel. The paths
written are printed (not with --quiet). Exit status 3 when h5py or matplotlib is missing
(apt-get install python3-h5py python3-matplotlib), 1 when a file is not a metrics file.
"""
import argparse
import os
import sys

MISSING_DEPS = 3


def metrics_path(run):
    return os.path.join(run, "metrics.h5") if os.path.isdir(run) else run


def load(path):
    import h5py
    import numpy as np
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        def column(group, name, rows):
            ds = f[group][name]
            ds.refresh()
            return ds[:rows]

        # Rows below len(step) are complete: step is written last.
        f["train"]["step"].refresh()
        f["eval"]["step"].refresh()
        nt, ne = len(f["train"]["step"]), len(f["eval"]["step"])
        run = {"train": {k: column("train", k, nt) for k in f["train"]},
               "eval": {k: column("eval", k, ne) for k in f["eval"]}, "fp8": {}}
        if "fp8" in f and "step" in f["fp8"]:
            g = f["fp8"]
            g["step"].refresh()
            rows = len(g["step"])
            if rows:
                run["fp8"] = {k: column("fp8", k, rows) for k in ("step", "amax", "scale")}
                run["fp8"]["tensors"] = [x.decode() if isinstance(x, bytes) else str(x) for x in g.attrs["tensors"]]
        # on_host: a CPU backend (no MFU, no device memory); older files lack the attribute, and a
        # CPU run wrote gpu_mem_gib 0 throughout.
        if "on_host" in f.attrs:
            run["on_host"] = bool(f.attrs["on_host"])
        else:
            run["on_host"] = bool(np.all(run["train"]["gpu_mem_gib"] == 0))
        run["grid"] = str(f.attrs.get("grid", ""))
        run["device"] = str(f.attrs.get("device", ""))
    return run


def panel_loss(ax, runs):
    for r in runs:
        t, e = r["data"]["train"], r["data"]["eval"]
        line, = ax.plot(t["step"], t["loss"], lw=1, label=f"{r['label']} train" if len(runs) > 1 else "train")
        if len(e["step"]):
            ax.plot(e["step"], e["loss"], "o--", color=line.get_color() if len(runs) > 1 else None, ms=4,
                    label=f"{r['label']} validation" if len(runs) > 1 else "validation")
    ax.set(title="loss", xlabel="step")
    ax.legend()


def panel_series(ax, runs, key, lw=None, **axis):
    """One /train column against the step, a line per run (a legend when there are several)."""
    for r in runs:
        t = r["data"]["train"]
        ax.plot(t["step"], t[key], lw=lw, label=r["label"])
    ax.set(xlabel="step", **axis)
    if len(runs) > 1:
        ax.legend()


def panel_lr(ax, runs):
    panel_series(ax, runs, "lr", title="learning rate")


def panel_tokens(ax, runs):
    panel_series(ax, runs, "tokens_per_s", lw=1, title="throughput", ylabel="tokens/s")


def panel_mfu(ax, runs):
    for r in runs:
        if not r["data"]["on_host"]:
            t = r["data"]["train"]
            ax.plot(t["step"], 100 * t["mfu"], lw=1, label=r["label"])
    ax.set(title="MFU (GPU runs)", xlabel="step", ylabel="MFU %")
    if len(runs) > 1:
        ax.legend()


def panel_grad_norm(ax, runs):
    panel_series(ax, runs, "grad_norm", lw=1, title="gradient norm (before clipping)", yscale="log")


def panel_fp8(axes, runs):
    """amax and scale per operand kind (input, weight, grad_output): the median over every layer and
    GEMM as a line, their range as a band, so that the panels stay readable for any model size."""
    import numpy as np
    styles = {"input": "-", "weight": "--", "grad_output": ":"}
    for ax, kind in zip(axes, ("amax", "scale")):
        for i, r in enumerate(runs):
            fp8 = r["data"]["fp8"]
            if not fp8:
                continue
            for operand, style in styles.items():
                cols = [j for j, n in enumerate(fp8["tensors"]) if n.endswith("." + operand)]
                v = fp8[kind][:, cols]
                label = f"{r['label']} {operand}" if len(runs) > 1 else operand
                color = f"C{i}" if len(runs) > 1 else None
                line, = ax.plot(fp8["step"], np.median(v, axis=1), style, lw=1, color=color, label=label)
                ax.fill_between(fp8["step"], v.min(axis=1), v.max(axis=1), color=line.get_color(), alpha=0.15)
        ax.set(title=f"FP8 {kind} (median, min-max over layers and GEMMs)", xlabel="step", yscale="log")
        ax.legend(fontsize="small")


def panels(runs):
    """(file stem, number of axes, drawing function) of every panel these runs have data for."""
    out = [("loss", 1, lambda ax: panel_loss(ax[0], runs)),
           ("lr", 1, lambda ax: panel_lr(ax[0], runs))]
    if any(not r["data"]["on_host"] for r in runs):
        out.append(("throughput", 2, lambda ax: (panel_tokens(ax[0], runs), panel_mfu(ax[1], runs))))
    else:
        out.append(("throughput", 1, lambda ax: panel_tokens(ax[0], runs)))
    out.append(("grad_norm", 1, lambda ax: panel_grad_norm(ax[0], runs)))
    if any(r["data"]["fp8"] for r in runs):
        out.append(("fp8", 2, lambda ax: panel_fp8(ax, runs)))
    return out


def title(runs):
    return "  vs  ".join(f"{r['label']} ({r['data']['grid']}{', ' + r['data']['device'] if r['data']['device'] else ''})"
                         for r in runs)


def write_dir(plt, runs, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for stem, n, draw in panels(runs):
        fig, ax = plt.subplots(1, n, figsize=(6.4 * n, 4.2), squeeze=False)
        draw(list(ax[0]))
        fig.suptitle(title(runs), fontsize="small")
        fig.tight_layout()
        path = os.path.join(out_dir, stem + ".png")
        # written beside and renamed, so that a reader never sees half a PNG (train redraws them live)
        tmp = os.path.join(out_dir, f".{stem}.tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        written.append(path)
    return written


def write_one(plt, runs, out):
    ps = panels(runs)
    cells = sum(n for _, n, _ in ps)
    rows = (cells + 1) // 2
    fig, ax = plt.subplots(rows, 2, figsize=(12, 3.6 * rows), squeeze=False)
    flat = [a for row in ax for a in row]
    k = 0
    for _, n, draw in ps:
        draw(flat[k:k + n])
        k += n
    for a in flat[k:]:
        a.set_visible(False)
    fig.suptitle(title(runs), fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="RUN_DIR or RUN_DIR/metrics.h5, one or more")
    p.add_argument("-o", "--output", default=None,
                   help="directory of PNGs (default RUN_DIR/plots; ./plots for several runs), or FILE.png")
    p.add_argument("--label", action="append", default=[], help="name of each run in the legends (in order)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    a = p.parse_args(argv)
    if a.label and len(a.label) != len(a.runs):
        p.error(f"{len(a.label)} --label for {len(a.runs)} runs")
    try:
        import h5py  # noqa: F401
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_metrics.py: {e.name} is not installed (apt-get install python3-h5py python3-matplotlib)",
              file=sys.stderr)
        return MISSING_DEPS
    runs = []
    for i, run in enumerate(a.runs):
        path = metrics_path(run)
        try:
            data = load(path)
        except (OSError, KeyError) as e:
            sys.exit(f"plot_metrics.py: {path}: not a gemmatron metrics file ({e})")
        if len(data["train"]["step"]) == 0:
            sys.exit(f"plot_metrics.py: {path}: no training step recorded yet")
        label = a.label[i] if a.label else os.path.basename(os.path.dirname(os.path.abspath(path)))
        runs.append({"label": label, "data": data})
    out = a.output
    if out is None:
        out = os.path.join(os.path.dirname(metrics_path(a.runs[0])) or ".", "plots") if len(runs) == 1 else "plots"
    written = write_one(plt, runs, out) if out.endswith(".png") else write_dir(plt, runs, out)
    if not a.quiet:
        steps = ", ".join(f"{r['label']}: {len(r['data']['train']['step'])} steps, "
                          f"{len(r['data']['eval']['step'])} evaluations"
                          + (f", FP8 amax/scale of {len(r['data']['fp8']['tensors'])} tensors" if r["data"]["fp8"] else "")
                          for r in runs)
        print(f"plots ({steps}):")
        for w in written:
            print(f"  {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
