#!/usr/bin/env python3
"""HF transformers' generate on one GPU, the baseline of `gemmatron generate` (scripts/bench_generate.sh):
GemmaForCausalLM from an HF config.json with HF's random initialization, BF16, attn_implementation
"sdpa", greedy (do_sample=False), random prompt ids, exactly --new tokens (min_new_tokens = max_new_tokens).
Each batch size runs once untimed (warm-up), then --repeat timed runs between torch.cuda.synchronize()
calls; the median is reported. Time to first token: generate with max_new_tokens=1 on one prompt of
--ttft-prompt tokens. One line per setting:

  hf generate batch=B prompt=P new=N cache=dynamic seconds=... tokens_per_s=... (new tokens / second)
  hf generate ttft prompt=P ms=...
"""
import argparse
import statistics
import time

import torch
from transformers import GemmaConfig, GemmaForCausalLM


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="HF config.json or its directory")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--ttft-prompt", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", default="dynamic", choices=["dynamic", "static"],
                    help="transformers' cache_implementation (static: its preallocated cache)")
    a = ap.parse_args()
    cfg = GemmaConfig.from_pretrained(a.config)
    torch.manual_seed(0)
    model = GemmaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16).eval()
    model.config._attn_implementation = "sdpa"
    kw = dict(do_sample=False, pad_token_id=cfg.pad_token_id)
    if a.cache == "static":
        kw["cache_implementation"] = "static"
    gen = torch.Generator(device="cuda").manual_seed(1)
    for B in a.batch:
        ids = torch.randint(3, cfg.vocab_size, (B, a.prompt), device="cuda", generator=gen)
        mask = torch.ones_like(ids)
        run = lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=a.new,
                                     min_new_tokens=a.new, **kw)
        with torch.no_grad():
            run()
            s = timed(run, a.repeat)
        print(f"hf generate batch={B} prompt={a.prompt} new={a.new} cache={a.cache} seconds={s:.3f} "
              f"tokens_per_s={B * a.new / s:.1f}", flush=True)
    ids = torch.randint(3, cfg.vocab_size, (1, a.ttft_prompt), device="cuda", generator=gen)
    with torch.no_grad():
        one = lambda: model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, **kw)
        one()
        s = timed(one, a.repeat)
    print(f"hf generate ttft prompt={a.ttft_prompt} ms={s * 1e3:.1f}", flush=True)


if __name__ == "__main__":
    main()
