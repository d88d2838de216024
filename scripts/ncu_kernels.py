#!/usr/bin/env python3
"""Per-kernel table of an Nsight Compute capture (never in CI; the GPU machines have ncu but not
nsys). Reads what

  ncu --csv --page raw --print-units base --log-file FILE \
      --metrics gpu__time_duration.sum,dram__bytes.sum,launch__grid_size,launch__block_size CMD

printed, and prints one row per kernel name and grid size, slowest total first: launches, µs per
launch, DRAM GB/s, grid, block, share of the captured time. ncu runs each kernel alone at base
clocks with the caches flushed, so the times are upper bounds of a real step's, but comparable
between kernels and between runs. scripts/bench_generate.sh runs it over one batch-1 decode step.
"""
import argparse
import csv
import sys
from collections import defaultdict


def number(text):
    return float(text.replace(",", "") or 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="?", default="-", help="ncu's CSV output (default: stdin)")
    ap.add_argument("--width", type=int, default=60, help="characters of each kernel name kept")
    args = ap.parse_args()
    rows = list(csv.reader(sys.stdin if args.csv == "-" else open(args.csv, newline="")))
    heads = [i for i, r in enumerate(rows) if "Kernel Name" in r]
    if not heads:
        sys.exit("ncu_kernels: no 'Kernel Name' header in the input (was ncu run with --csv --page raw?)")
    h, units = rows[heads[0]], rows[heads[0] + 1]
    col = {name: h.index(name) for name in
           ("Kernel Name", "gpu__time_duration.sum", "dram__bytes.sum", "launch__grid_size", "launch__block_size")}
    for name, unit in (("gpu__time_duration.sum", ("ns", "nsecond")), ("dram__bytes.sum", ("byte",))):
        if units[col[name]] not in unit:
            sys.exit(f"ncu_kernels: {name} in {units[col[name]]!r}, want {unit[0]!r} (run ncu with --print-units base)")
    agg = defaultdict(lambda: [0, 0.0, 0.0, ""])
    for r in rows[heads[0] + 2:]:  # the line after the header gives the units (ns, byte)
        if len(r) < len(h):
            continue
        grid = r[col["launch__grid_size"]]
        a = agg[(r[col["Kernel Name"]][: args.width], grid)]
        a[0] += 1
        a[1] += number(r[col["gpu__time_duration.sum"]])
        a[2] += number(r[col["dram__bytes.sum"]])
        a[3] = r[col["launch__block_size"]]
    total = sum(a[1] for a in agg.values())
    print(f"{'launches':>8} {'us/launch':>9} {'GB/s':>6} {'grid':>7} {'block':>5} {'share':>6}  kernel")
    for (name, grid), (n, ns, byte, block) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"{n:8d} {ns / n / 1e3:9.1f} {byte / ns if ns else 0:6.0f} {grid:>7} {block:>5} {100 * ns / total:5.1f}%  {name}")
    print(f"{sum(a[0] for a in agg.values())} launches, {total / 1e3:.1f} us")


if __name__ == "__main__":
    main()
