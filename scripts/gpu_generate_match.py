#!/usr/bin/env python3
"""How far gemmatron's greedy generation runs identical to HF transformers' on one checkpoint (never
in CI; GPU, BF16). Reads the JSONL that `gemmatron generate --jsonl` wrote for the prompts of
PROMPTS.jsonl ({"ids": [...]} a line), runs transformers' greedy `generate` on the same prompt ids
from the same HF directory in bf16 (sdpa, one prompt at a time: no padding), and prints per prompt
the number of leading new tokens that agree, then one summary line:

  match: P prompts, N new tokens each: identical for a median of M tokens (min A, max B); all N in K
"""
import argparse
import json
import statistics

import torch
from transformers import GemmaForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the HF directory both ran on")
    ap.add_argument("--prompts", required=True, help="the prompts' JSONL ({'ids': [...]} a line)")
    ap.add_argument("--ours", required=True, help="gemmatron generate --jsonl output")
    a = ap.parse_args()
    prompts = [json.loads(line)["ids"] for line in open(a.prompts)]
    ours = sorted((json.loads(line) for line in open(a.ours)), key=lambda o: o["index"])
    assert len(ours) == len(prompts), f"{len(ours)} outputs for {len(prompts)} prompts"
    model = GemmaForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
    model.eval()
    same = []
    for p, o in zip(prompts, ours):
        new = len(o["ids"])
        ids = torch.tensor([p], device="cuda")
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=new, min_new_tokens=new)
        hf = out[0, len(p):].tolist()
        k = 0
        while k < min(len(hf), new) and hf[k] == o["ids"][k]:
            k += 1
        same.append(k)
        print(f"prompt {o['index']}: identical for {k} of {new} tokens")
    n = len(ours[0]["ids"])
    print(f"match: {len(same)} prompts, {n} new tokens each: identical for a median of "
          f"{statistics.median(same):g} tokens (min {min(same)}, max {max(same)}); all {n} in "
          f"{sum(s == n for s in same)}")


if __name__ == "__main__":
    main()
