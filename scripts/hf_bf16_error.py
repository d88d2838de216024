#!/usr/bin/env python3
"""How far HF transformers' own bf16 model is from its float32 model on the parity fixtures: the
relative-norm error of logits, loss and gradients that BF16 itself costs, against which gemmatron's
GPU-vs-CPU tolerances are set. Run where torch and transformers are installed (the GPU machine).
Prints one line per fixture."""
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import GemmaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def main():
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for name in sys.argv[1:] or ["mha", "mqa", "gqa", "bf16"]:
        d = os.path.join(ROOT, name)
        exp = load_file(os.path.join(d, "expected.safetensors"))
        m = GemmaForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").to(dev)
        out = m(input_ids=exp["input_ids"].to(dev), labels=exp["labels"].to(dev))
        out.loss.backward()
        g = max(rel(p.grad.cpu(), exp["grad." + n]) for n, p in m.named_parameters())
        print(f"hf bf16 vs fp32 {name}: loss {abs(out.loss.item() - exp['loss'].item()) / exp['loss'].item():.2e} "
              f"logits {rel(out.logits.cpu(), exp['logits']):.2e} worst gradient {g:.2e}")


if __name__ == "__main__":
    main()
