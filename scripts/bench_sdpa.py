#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention alone, each fused backend forced in turn
(torch.nn.attention.sdpa_kernel([SDPBackend.X])), on the attention shapes of gemmatron's models:
causal, bf16, head_dim 256.

  gemma-2b       B=2 T=2048 Hq=8  Hkv=1  (MQA)
  gemma-2b       B=1 T=8192 Hq=8  Hkv=1
  gemma-7b       B=2 T=2048 Hq=16 Hkv=16
  gemma-7b       B=1 T=4096 Hq=16 Hkv=16
  (--shapes NAME:B,T,Hq,Hkv,D[;...] for others)

Q, K and V are laid out as the model makes them, [B, T, H, D] viewed as [B, H, T, D] (as HF's
attention passes them), with requires_grad so the forward is the training forward (it saves the
softmax statistics). With fewer KV heads than query heads, K and V are passed with their own head
count and enable_gqa=True (kv=gqa); a backend that refuses that is run again with K and V expanded
to Hq heads, materialized as their own tensors (kv=expanded: the kernel does the same FLOPs; the
copy and the gradient's sum back to one head are not timed). A backend that refuses both prints
`unsupported reason="..."` with PyTorch's reasons, and the run goes on.

Timing: --warmup untimed calls, then --reps calls each between two CUDA events, median. fwd is
the forward alone; fwd+bwd is the forward and torch.autograd.grad of it (fresh gradients, nothing
accumulated); bwd = (fwd+bwd) - fwd. FLOP convention (the one gemmatron's profile uses): causal
forward = 4*B*Hq*T^2*D / 2 (two GEMMs, QK^T and PV, half of the square under the causal mask),
backward = 2.5 x forward (five GEMMs), fwd+bwd = 3.5 x forward. One line per backend and shape:

  sdpa backend=cudnn shape=gemma-2b B=2 T=2048 Hq=8 Hkv=1 D=256 kv=gqa fwd_ms=.. fwd_tflops=.. bwd_ms=.. bwd_tflops=..

`--backends` also takes `default` (nothing forced; the line names the kernel SDPA picked),
`efficient` and `math`. `--device cpu` is a smoke test (only math runs there)."""
import argparse
import contextlib
import re
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = {
    "gemma-2b": [(2, 2048, 8, 1, 256), (1, 8192, 8, 1, 256)],
    "gemma-7b": [(2, 2048, 16, 16, 256), (1, 4096, 16, 16, 256)],
}
BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
    "default": None,
}


def parse_shapes(s):
    if not s:
        return [(name, *shp) for name, lst in SHAPES.items() for shp in lst]
    out = []
    for item in s.split(";"):
        item = item.strip()
        if not item:
            continue
        if item in SHAPES:
            out += [(item, *shp) for shp in SHAPES[item]]
            continue
        name, _, dims = item.partition(":")
        v = [int(x) for x in dims.split(",")]
        if len(v) != 5 or min(v) < 1 or v[2] % v[3]:
            raise SystemExit(f"bench_sdpa: bad shape {item!r} (NAME:B,T,Hq,Hkv,D with Hkv dividing Hq)")
        out.append((name, *v))
    return out


def one_line(msg, limit=300):
    msg = re.sub(r"\s+", " ", str(msg)).strip().replace('"', "'")
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


class Timer:
    def __init__(self, device):
        self.cuda = device == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def median_ms(self, fn, reps, warmup):
        for _ in range(warmup):
            fn()
        self.sync()
        ts = []
        for _ in range(reps):
            if self.cuda:
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                fn()
                e1.record()
                e1.synchronize()
                ts.append(e0.elapsed_time(e1))
            else:
                t0 = time.perf_counter()
                fn()
                ts.append(1e3 * (time.perf_counter() - t0))
        return statistics.median(ts)


def make_inputs(B, T, Hq, Hkv, D, device, gen):
    def mk(h):
        x = torch.randn(B, T, h, D, generator=gen, dtype=torch.float32).to(device=device, dtype=torch.bfloat16)
        return x.transpose(1, 2).requires_grad_(True)  # [B, H, T, D] view of [B, T, H, D]
    return mk(Hq), mk(Hkv), mk(Hkv)


def expand_heads(x, Hq):
    """[B, Hkv, T, D] -> its own [B, T, Hq, D] tensor seen as [B, Hq, T, D] (head h uses KV head h // (Hq/Hkv))."""
    B, Hkv, T, D = x.shape
    y = x.detach().transpose(1, 2).repeat_interleave(Hq // Hkv, dim=2).contiguous()
    return y.transpose(1, 2).requires_grad_(True)


def try_call(backend, q, k, v, gqa):
    """Runs one forward and backward under the backend; returns None or the reason it refused."""
    kw = {"enable_gqa": True} if gqa else {}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            with forced(backend):
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, **kw)
                torch.autograd.grad(o, (q, k, v), torch.ones_like(o))
            return None
        except (RuntimeError, NotImplementedError, ValueError) as e:
            notes = [str(x.message) for x in w]  # PyTorch warns why each kernel was not used
            return one_line("; ".join(notes + [str(e).splitlines()[0] if str(e) else type(e).__name__]))


def forced(backend):
    return sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()


def picked_kernel(q, k, v, gqa):
    try:
        kw = {"enable_gqa": True} if gqa else {}
        return SDPBackend(torch._fused_sdp_choice(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True, **kw)).name.lower()
    except Exception as e:
        return f"unknown({type(e).__name__})"


def bench(name, shape, backend_name, a, timer, gen):
    B, T, Hq, Hkv, D = shape
    tag = f"sdpa backend={backend_name} shape={name} B={B} T={T} Hq={Hq} Hkv={Hkv} D={D}"
    backend = BACKENDS[backend_name]
    q, k, v = make_inputs(B, T, Hq, Hkv, D, a.device, gen)
    kv, gqa, note = ("mha", False, "") if Hkv == Hq else ("gqa", True, "")
    why = try_call(backend, q, k, v, gqa)
    if why is not None and gqa:
        k, v = expand_heads(k, Hq), expand_heads(v, Hq)
        why2 = try_call(backend, q, k, v, False)
        if why2 is None:
            kv, gqa, note, why = "expanded", False, f' note="enable_gqa refused: {one_line(why, 200)}"', None
        else:
            why = f"enable_gqa: {why} | expanded K/V: {why2}"
    if why is not None:
        print(f'{tag} unsupported reason="{why}"', flush=True)
        return
    extra = f" picked={picked_kernel(q, k, v, gqa)}" if backend is None else ""
    kw = {"enable_gqa": True} if gqa else {}
    g = torch.randn(B, T, Hq, D, generator=gen).to(device=a.device, dtype=torch.bfloat16).transpose(1, 2)

    def fwd():
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kw)

    def fwd_bwd():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, **kw)
        torch.autograd.grad(o, (q, k, v), g)

    with forced(backend):
        f_ms = timer.median_ms(fwd, a.reps, a.warmup)
        fb_ms = timer.median_ms(fwd_bwd, a.reps, a.warmup)
    flops = 4.0 * B * Hq * T * T * D / 2
    b_ms = fb_ms - f_ms
    tf = lambda fl, ms: fl / (ms * 1e-3) / 1e12 if ms > 0 else float("nan")
    print(f"{tag} kv={kv}{extra} fwd_ms={f_ms:.3f} fwd_tflops={tf(flops, f_ms):.1f} bwd_ms={b_ms:.3f} "
          f"bwd_tflops={tf(2.5 * flops, b_ms):.1f} fwdbwd_ms={fb_ms:.3f} fwdbwd_tflops={tf(3.5 * flops, fb_ms):.1f}{note}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="cudnn,flash", help="comma list of " + ",".join(BACKENDS))
    ap.add_argument("--shapes", default="", help="gemma-2b;gemma-7b (default both) or NAME:B,T,Hq,Hkv,D;...")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    a = ap.parse_args()
    names = [x.strip() for x in a.backends.split(",") if x.strip()]
    bad = [x for x in names if x not in BACKENDS]
    if bad or not names:
        ap.error(f"--backends: unknown {bad}; choose from {list(BACKENDS)}")
    shapes = parse_shapes(a.shapes)
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_sdpa: no CUDA device (use --device cpu for a smoke test)")
    timer = Timer(a.device)
    gpu = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    cudnn = torch.backends.cudnn.version() if a.device == "cuda" else None
    print(f"# bench_sdpa: torch {torch.__version__}, cuDNN {cudnn}, {gpu}; causal bf16; median of {a.reps} "
          f"after {a.warmup} warm-ups; fwd FLOPs = 4*B*Hq*T^2*D/2, bwd = 2.5x fwd, bwd_ms = fwd+bwd - fwd",
          flush=True)
    gen = torch.Generator().manual_seed(0)
    for name, *shape in shapes:
        for b in names:
            try:
                bench(name, tuple(shape), b, a, timer, gen)
            except Exception as e:  # OOM or anything else: report and go on
                B, T, Hq, Hkv, D = shape
                print(f'sdpa backend={b} shape={name} B={B} T={T} Hq={Hq} Hkv={Hkv} D={D} '
                      f'error="{one_line(f"{type(e).__name__}: {e}")}"', flush=True)
            if a.device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
