#!/usr/bin/env python3
"""The PyTorch baseline gemmatron is measured against: HF transformers' GemmaForCausalLM training
step (forward with labels, backward, clip_grad_norm_ 1.0, AdamW) on random tokens, one mode per
process so peak-memory figures are clean.

  --mode eager     bf16 parameters, gradients and AdamW state (PyTorch eager)
  --mode compile   the same with torch.compile(model)
  --mode autocast  fp32 master parameters and AdamW state, bf16 autocast (gemmatron's recipe)

Prints one line: mode, tokens/s, MFU (Megatron convention, 989 TFLOP/s dense BF16), peak memory."""
import argparse
import json
import os
import time

import torch
from transformers import GemmaConfig, GemmaForCausalLM


def flops_per_token(c, seq):
    C, D, F = c.hidden_size, c.head_dim, c.intermediate_size
    q, kv = c.num_attention_heads * D, c.num_key_value_heads * D
    mm = c.num_hidden_layers * (C * (q + 2 * kv) + q * C + 3 * C * F) + c.vocab_size * C
    return 6 * mm + 6 * c.num_hidden_layers * q * seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "hf",
                                                     "gemma-2b", "config.json"))
    ap.add_argument("--mode", choices=["eager", "compile", "autocast"], default="eager")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    with open(a.config) as f:
        cfg = GemmaConfig(**{k: v for k, v in json.load(f).items() if k not in ("architectures",)})
    torch.manual_seed(0)
    dtype = torch.float32 if a.mode == "autocast" else torch.bfloat16
    model = GemmaForCausalLM(cfg).to(device="cuda", dtype=dtype)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    fwd = torch.compile(model) if a.mode == "compile" else model
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.mode == "autocast"):
            loss = fwd(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    tps = a.batch * a.seq / med
    mfu = tps * flops_per_token(cfg, a.seq) / 989e12
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"hf {a.mode}: B={a.batch} T={a.seq} step_ms={1e3 * med:.1f} tokens_per_s={tps:.0f} "
          f"mfu={100 * mfu:.1f}% peak_mem_gib={peak:.1f} loss={loss.item():.4f} "
          f"attn={model.config._attn_implementation}")


if __name__ == "__main__":
    main()
