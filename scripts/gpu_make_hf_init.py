#!/usr/bin/env python3
"""Writes a randomly initialized Gemma as an HF checkpoint directory, made by transformers itself:
GemmaForCausalLM(config) with HF's own initialization (built on the GPU, which takes seconds for
Gemma-2B), cast to --dtype and written by save_pretrained. scripts/gpu_finetune.sh fine-tunes from it
with `--set model.path=OUT`. Needs torch and transformers (the GPU machine).

  python3 scripts/gpu_make_hf_init.py --config configs/hf/gemma-2b --out runs/gpu/hf-gemma-2b
"""
import argparse
import os
import sys
import time


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/hf/gemma-2b", help="HF config.json or its directory")
    p.add_argument("--out", required=True, help="directory to write (replaced if it exists)")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="dtype of the saved weights")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the initialization")
    p.add_argument("--device", default=None, help="where to build the model (default: cuda when available)")
    a = p.parse_args(argv)

    import shutil

    import torch  # imported after parsing, so that --help works without torch
    from transformers import AutoConfig, GemmaForCausalLM

    t0 = time.time()
    cfg_dir = os.path.dirname(a.config) if a.config.endswith(".json") else a.config
    cfg = AutoConfig.from_pretrained(cfg_dir)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(a.seed)
    with torch.device(device):
        model = GemmaForCausalLM(cfg)  # HF's _init_weights: normal(0, initializer_range), zero norms
    model = model.to(torch.bfloat16 if a.dtype == "bf16" else torch.float32)
    nparams = sum(t.numel() for t in model.parameters())
    shutil.rmtree(a.out, ignore_errors=True)
    model.save_pretrained(a.out)
    files = sorted(os.listdir(a.out))
    size = sum(os.path.getsize(os.path.join(a.out, f)) for f in files)
    print(f"hf init: {a.out}: GemmaForCausalLM {nparams / 1e9:.3f}B parameters, {a.dtype}, built on {device}, "
          f"{size / 1e9:.2f} GB in {files} ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
