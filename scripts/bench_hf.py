#!/usr/bin/env python3
"""The PyTorch baseline gemmatron is measured against, at its best: HF transformers'
GemmaForCausalLM training step on random tokens (forward with labels, backward, gradient clipping
to norm 1.0 with torch.nn.utils.clip_grad_norm_, AdamW, zero_grad), built from an HF config.json
with HF's random initialization.

  --mode compile   bf16 parameters, gradients and AdamW state; torch.compile(model) (the headline)
  --mode eager     the same without torch.compile
  --mode autocast  fp32 master parameters and AdamW state, bf16 autocast (gemmatron's recipe), eager

AdamW is torch.optim.AdamW(..., fused=True) by default (`--adamw fused`), what HF Trainer's default
optim "adamw_torch_fused" builds; `--adamw foreach` / `--adamw plain` for the others.

Attention is attn_implementation="sdpa", transformers' default: torch's scaled_dot_product_attention
with is_causal=True and no mask when the batch has no padding (as here), and with enable_gqa=True
for Gemma-2B's single KV head (transformers' use_gqa_in_sdpa: no mask, head_dim <= 256). Which fused
kernel SDPA dispatches that call to is probed before timing, on the model's own first SDPA call
(torch._fused_sdp_choice with the same arguments), and printed as sdpa_kernel=...: on H100/H200
with torch 2.5.1 and later it is expected to be FLASH_ATTENTION (PyTorch's FlashAttention-2 port,
head_dim 256 within its limit), because the default priority order puts cuDNN's attention after
flash and memory-efficient (cuDNN first was tried in 2.5.0 and reverted). scripts/bench_sdpa.py
times each backend alone.

--accum takes one K or a list (`--accum 1,8`): K micro-batches per optimizer step, the loss of each
scaled by 1/K, one clip and one AdamW step per K; every K in the list reuses the same (compiled)
model and optimizer, so torch.compile runs once per process. A setting's first --warmup steps
(for K > 1, --warmup-accum steps) are not timed; each timed step runs between two
torch.cuda.synchronize() calls and the median is reported. Peak memory is
torch.cuda.max_memory_allocated() over that setting's steps (weights, gradients, AdamW state and
activations; not the CUDA context or the allocator's cache). One line per setting, for scripts/bench_gpu.sh:

  hf mode=compile batch=2 seq=2048 accum=1 step_ms=... tokens_per_s=... mfu=...% peak_mem_gib=... ...

MFU is the Megatron convention used by gemmatron: 6 x matmul parameters (the tied lm_head
included) + 6 x layers x heads x head_dim x seq causal attention FLOPs per token, over 989 TFLOP/s
dense BF16. `--device cpu` runs the same step on the CPU (a smoke test with a tiny config)."""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import transformers
from transformers import GemmaConfig, GemmaForCausalLM

PEAK_BF16 = 989e12


def flops_per_token(c, seq):
    C, D, F = c.hidden_size, c.head_dim, c.intermediate_size
    q, kv = c.num_attention_heads * D, c.num_key_value_heads * D
    mm = c.num_hidden_layers * (C * (q + 2 * kv) + q * C + 3 * C * F) + c.vocab_size * C
    return 6 * mm + 6 * c.num_hidden_layers * q * seq


def load_config(path):
    """An HF config.json, or the directory holding it."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path) as f:
        d = json.load(f)
    for k in ("architectures", "torch_dtype", "dtype", "transformers_version"):
        d.pop(k, None)
    cfg = GemmaConfig(**d)
    cfg._attn_implementation = "sdpa"
    return cfg


class _SDPAProbe(torch.overrides.TorchFunctionMode):
    """Records the first scaled_dot_product_attention call the model makes and asks torch which
    fused kernel it dispatches that exact call to (same shapes, strides, mask, is_causal, enable_gqa;
    inputs that require grad, as in training)."""

    NAMES = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")

    def __init__(self):
        super().__init__()
        self.found = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention and self.found is None:
            with torch._C.DisableTorchFunction():
                self.found = self.describe(dict(zip(self.NAMES, args), **kwargs))
        return func(*args, **kwargs)

    @staticmethod
    def describe(c):
        from torch.nn.attention import SDPBackend
        q, k, v = (torch.empty_strided(c[n].shape, c[n].stride(), dtype=c[n].dtype, device=c[n].device)
                   .requires_grad_(True) for n in ("query", "key", "value"))
        mask, causal, gqa = c.get("attn_mask"), bool(c.get("is_causal", False)), bool(c.get("enable_gqa", False))
        try:
            kw = {"enable_gqa": True} if gqa else {}
            name = SDPBackend(torch._fused_sdp_choice(q, k, v, attn_mask=mask, dropout_p=c.get("dropout_p", 0.0),
                                                      is_causal=causal, scale=c.get("scale"), **kw)).name.lower()
        except Exception as e:  # a private API: report, never fail the benchmark for it
            name = f"unknown({type(e).__name__})"
        return (f"{name}(mask={'none' if mask is None else 'tensor'},causal={int(causal)},gqa={int(gqa)},"
                f"q={'x'.join(map(str, q.shape))},kv_heads={k.shape[1]})")


def sdpa_kernel_name(model, ids, mode, device):
    """The SDPA kernel of the model's attention: one forward of the decoder (no lm_head, no grad)."""
    probe = _SDPAProbe()
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=mode == "autocast"), probe:
        model.model(input_ids=ids)
    return probe.found or "none(no sdpa call seen)"


def make_optimizer(params, kind, device):
    kw = dict(lr=1e-5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    if kind == "fused":
        kw["fused"] = True
    elif kind == "foreach":
        kw["foreach"] = True
    else:
        kw["foreach"] = False
    return torch.optim.AdamW(params, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                     "configs", "hf", "gemma-2b", "config.json"))
    ap.add_argument("--mode", choices=["compile", "eager", "autocast"], default="compile")
    ap.add_argument("--adamw", choices=["fused", "foreach", "plain"], default="fused")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--accum", default="1", help="micro-batches per optimizer step: K or a list K1,K2,...")
    ap.add_argument("--steps", type=int, default=10, help="timed optimizer steps at accum 1")
    ap.add_argument("--steps-accum", type=int, default=3, help="timed optimizer steps at accum > 1")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before timing at accum 1 "
                    "(the first one compiles)")
    ap.add_argument("--warmup-accum", type=int, default=1, help="untimed steps before timing at accum > 1")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    a = ap.parse_args()
    accums = [int(x) for x in a.accum.split(",") if x.strip()]
    if not accums or min(accums) < 1:
        ap.error("--accum: positive integers")
    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_hf: no CUDA device (use --device cpu for a smoke test)")

    cfg = load_config(a.config)
    torch.manual_seed(0)
    dtype = torch.float32 if a.mode == "autocast" else torch.bfloat16
    with torch.device(dev):  # HF's random initialization runs on the device (seconds, not a minute on the CPU)
        model = GemmaForCausalLM(cfg)
    model.to(dtype=dtype)
    model.train()
    opt = make_optimizer(model.parameters(), a.adamw, dev)
    fwd = torch.compile(model) if a.mode == "compile" else model
    gen = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), generator=gen).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    kernel = sdpa_kernel_name(model, ids, a.mode, dev)
    gpu = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    print(f"# bench_hf: torch {torch.__version__}, transformers {transformers.__version__}, {gpu}; "
          f"{os.path.basename(os.path.dirname(os.path.abspath(a.config)))} random init, "
          f"{sum(p.numel() for p in params) / 1e9:.2f}B parameters, attn={model.config._attn_implementation}, "
          f"sdpa kernel {kernel}, AdamW {a.adamw}, clip {a.clip}", flush=True)

    def step(K):
        last = None
        for _ in range(K):
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=a.mode == "autocast"):
                loss = fwd(input_ids=ids, labels=ids).loss
            (loss / K if K > 1 else loss).backward()
            last = loss.detach()
        torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return last

    for K in accums:
        steps, warmup = (a.steps, a.warmup) if K == 1 else (a.steps_accum, a.warmup_accum)
        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(warmup):
            step(K)
        sync()
        warm_s = time.perf_counter() - t0
        times, loss = [], None
        for _ in range(max(steps, 1)):
            sync()
            t0 = time.perf_counter()
            loss = step(K)
            sync()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        tps = a.batch * a.seq * K / med
        mfu = tps * flops_per_token(cfg, a.seq) / PEAK_BF16
        peak = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else 0.0
        print(f"hf mode={a.mode} batch={a.batch} seq={a.seq} accum={K} step_ms={1e3 * med:.1f} "
              f"min_ms={1e3 * min(times):.1f} max_ms={1e3 * max(times):.1f} tokens_per_s={tps:.0f} "
              f"mfu={100 * mfu:.1f}% peak_mem_gib={peak:.1f} loss={loss.item():.4f} adamw={a.adamw} "
              f"clip={a.clip:g} attn={model.config._attn_implementation} sdpa_kernel={kernel} "
              f"steps={len(times)} warmup={warmup} warmup_s={warm_s:.1f}", flush=True)


if __name__ == "__main__":
    main()
