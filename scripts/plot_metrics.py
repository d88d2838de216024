#!/usr/bin/env python3
"""Renders RUN_DIR/metrics.h5 (train/metrics/metrics.h) to a PNG: training and validation loss, learning
rate, throughput (tokens/s and MFU), gradient norm, and for FP8 runs the amaxes and scales of
/fp8 per operand kind (input, weight, grad_output). Works while the run is still writing the file (HDF5 SWMR).

  python3 scripts/plot_metrics.py RUN_DIR/metrics.h5 [-o metrics.png]

Needs h5py and matplotlib (optional dependencies: apt-get install python3-h5py python3-matplotlib).
"""
import argparse
import sys


def load(path):
    import h5py
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        def column(group, name, rows):
            ds = f[group][name]
            ds.refresh()
            return ds[:rows]

        # Rows below len(step) are complete: step is written last.
        f["train"]["step"].refresh()
        f["eval"]["step"].refresh()
        nt, ne = len(f["train"]["step"]), len(f["eval"]["step"])
        train = {k: column("train", k, nt) for k in f["train"]}
        evals = {k: column("eval", k, ne) for k in f["eval"]}
        fp8 = {}
        if "fp8" in f and "step" in f["fp8"]:
            g = f["fp8"]
            g["step"].refresh()
            rows = len(g["step"])
            if rows:
                fp8 = {k: column("fp8", k, rows) for k in ("step", "amax", "scale")}
                fp8["tensors"] = [x.decode() if isinstance(x, bytes) else str(x) for x in g.attrs["tensors"]]
        title = f"{path}  ({f.attrs.get('grid', '')})"
    return train, evals, fp8, title


def plot(train, evals, fp8, title, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_metrics.py: matplotlib is not installed (apt-get install python3-matplotlib)")
    rows = 3 if fp8 else 2
    fig, ax = plt.subplots(rows, 2, figsize=(12, 3.6 * rows), squeeze=False)
    step = train["step"]
    ax[0][0].plot(step, train["loss"], label="train", lw=1)
    if len(evals["step"]):
        ax[0][0].plot(evals["step"], evals["loss"], "o-", label="validation")
    ax[0][0].set(title="loss", xlabel="step")
    ax[0][0].legend()
    ax[0][1].plot(step, train["lr"])
    ax[0][1].set(title="learning rate", xlabel="step")
    ax[1][0].plot(step, train["tokens_per_s"], label="tokens/s")
    ax[1][0].set(title="throughput", xlabel="step", ylabel="tokens/s")
    mfu = ax[1][0].twinx()
    mfu.plot(step, 100 * train["mfu"], color="tab:orange", lw=0.8)
    mfu.set_ylabel("MFU %", color="tab:orange")
    ax[1][1].plot(step, train["grad_norm"])
    ax[1][1].set(title="gradient norm (before clipping)", xlabel="step", yscale="log")
    if fp8:
        plot_fp8(ax[2], fp8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    extra = f", FP8 amax/scale of {len(fp8['tensors'])} tensors" if fp8 else ""
    print(f"{out}: {len(step)} steps, {len(evals['step'])} evaluations{extra}")


def plot_fp8(axes, fp8):
    """amax and scale per operand kind (input, weight, grad_output): the median over every layer and
    GEMM as a line, their range as a band, so that the panels stay readable for any model size."""
    import numpy as np
    step = fp8["step"]
    for ax, kind in zip(axes, ("amax", "scale")):
        values = fp8[kind]
        for operand in ("input", "weight", "grad_output"):
            cols = [i for i, n in enumerate(fp8["tensors"]) if n.endswith("." + operand)]
            v = values[:, cols]
            line, = ax.plot(step, np.median(v, axis=1), lw=1, label=operand)
            ax.fill_between(step, v.min(axis=1), v.max(axis=1), color=line.get_color(), alpha=0.2)
        ax.set(title=f"FP8 {kind} (median, min-max over layers and GEMMs)", xlabel="step", yscale="log")
        ax.legend()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", help="RUN_DIR/metrics.h5")
    p.add_argument("-o", "--output", default=None, help="PNG to write (default: next to the file)")
    a = p.parse_args(argv)
    try:
        import h5py  # noqa: F401
    except ImportError:
        sys.exit("plot_metrics.py: h5py is not installed (apt-get install python3-h5py)")
    try:
        train, evals, fp8, title = load(a.metrics)
    except (OSError, KeyError) as e:
        sys.exit(f"plot_metrics.py: {a.metrics}: not a gemmatron metrics file ({e})")
    if len(train["step"]) == 0:
        sys.exit(f"plot_metrics.py: {a.metrics}: no training step recorded yet")
    out = a.output or a.metrics.rsplit(".", 1)[0] + ".png"
    plot(train, evals, fp8, title, out)


if __name__ == "__main__":
    main(sys.argv[1:])
