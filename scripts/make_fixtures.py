#!/usr/bin/env python3
"""Generates the HF parity fixtures under tests/fixtures/ with transformers (needs torch,
transformers, safetensors; run on a machine that has them, e.g. the GPU machine).

Each fixture is a tiny random GemmaForCausalLM written by save_pretrained, plus expected.safetensors:
  input_ids  I64 [B, T]     token ids
  labels     I64 [B, T]     = input_ids with some positions set to -100 (HF shifts them inside)
  logits     F32 [B, T, V]  float32 eager-attention logits
  loss       F32 [1]        HF's causal-LM loss (mean over unmasked next-token targets)
  grad.NAME  F32 [...]      d loss / d parameter, for every parameter under its HF name
  train_loss F32 [5]        loss before each of 4 AdamW steps on this batch, and after the last
and generate.safetensors (`make_fixtures.py --generate [NAME...]`: only these files, from the saved
checkpoints, whose weights are left as they are): HF's greedy generate on a batch of prompts of
unequal length, left-padded with attention_mask, in float32 eager attention:
  input_ids      I64 [B, T]    prompts, left-padded with pad_token_id
  attention_mask I64 [B, T]    0 on the padding
  generated      I64 [B, 8]    the new tokens (pad_token_id after a sequence's EOS)
The reference numbers come from the checkpoint as loaded back by from_pretrained in float32, so a
bf16 or f16 checkpoint is compared after the same rounding gemmatron sees."""
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import GemmaConfig, GemmaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

BASE = dict(vocab_size=160, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, head_dim=16, max_position_embeddings=64,
            rms_norm_eps=1e-6, initializer_range=0.2, bos_token_id=2, eos_token_id=1,
            pad_token_id=0, tie_word_embeddings=True)

# name: (config overrides, checkpoint dtype, save_pretrained max_shard_size or None)
FIXTURES = {
    "mha": (dict(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh"),
            torch.float32, None),
    "mqa": (dict(num_key_value_heads=1, hidden_act="gelu", hidden_activation=None,
                 rope_theta=500.0), torch.float32, None),
    "gqa": (dict(num_key_value_heads=2, head_dim=24, hidden_act="gelu_pytorch_tanh",
                 hidden_activation=None, num_hidden_layers=3), torch.float32, None),
    "bf16": (dict(num_key_value_heads=2, hidden_act="gelu_pytorch_tanh",
                  hidden_activation="gelu_pytorch_tanh"), torch.bfloat16, None),
    "f16": (dict(num_key_value_heads=1, head_dim=32, hidden_act="gelu"), torch.float16, None),
    "sharded": (dict(num_key_value_heads=2, hidden_act="gelu_pytorch_tanh"), torch.float32,
                "60KB"),
    # transformers >= 4.48 follows hidden_act when the two keys disagree; so does gemmatron.
    "conflict": (dict(hidden_act="gelu", hidden_activation="gelu_pytorch_tanh"), torch.float32,
                 None),
}

B, T = 2, 13


def make_config(overrides):
    kw = dict(BASE)
    kw.update(overrides)
    theta = kw.pop("rope_theta", 10000.0)
    try:
        cfg = GemmaConfig(**kw, rope_parameters={"rope_type": "default", "rope_theta": theta})
    except TypeError:
        cfg = GemmaConfig(**kw, rope_theta=theta)
    cfg._attn_implementation = "eager"
    return cfg


def randomize(model, gen):
    """Norm weights far from zero (HF initializes them to 0, which would hide a missing 1 + w)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + 0.3)


def inputs(vocab, gen):
    ids = torch.randint(0, vocab, (B, T), generator=gen)
    ids[0, 0] = 0  # the padding id appears: its embedding row gets no lookup gradient
    labels = ids.clone()
    labels[0, 4] = -100
    labels[1, 7:10] = -100
    return ids, labels


def reference(path, ids, labels):
    model = GemmaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.train()  # dropout is 0; train mode only enables gradients the usual way
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    tensors = {"input_ids": ids.contiguous(), "labels": labels.contiguous(),
               "logits": out.logits.detach().float().contiguous(),
               "loss": out.loss.detach().float().reshape(1)}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().float().clone()
    act = type(model.model.layers[0].mlp.act_fn).__name__
    tensors["train_loss"] = train_losses(model, ids, labels)
    return tensors, act


def train_losses(model, ids, labels, steps=4):
    """Loss before each of `steps` AdamW steps (lr 1e-2, betas 0.9/0.95, eps 1e-8, weight decay
    0.1 on matrices only, gradient norm clipped to 1.0) on the same batch, then once more after."""
    decay = [p for n, p in model.named_parameters() if "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(model(input_ids=ids, labels=labels).loss.item())
    return torch.tensor(losses, dtype=torch.float32)


def make(name, overrides, dtype, shard, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cfg = make_config(overrides)
    model = GemmaForCausalLM(cfg)
    randomize(model, gen)
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    kw = {"max_shard_size": shard} if shard else {}
    model.to(dtype).save_pretrained(out, **kw)
    ids, labels = inputs(cfg.vocab_size, gen)
    tensors, act = reference(out, ids, labels)
    save_file(tensors, os.path.join(out, "expected.safetensors"), metadata={"format": "pt"})
    files = sorted(os.listdir(out))
    print(f"{name}: loss {tensors['loss'].item():.6f} act {act} files {files}")


def probe_activation():
    """Which activation transformers uses when hidden_act and hidden_activation disagree."""
    cfg = make_config(dict(hidden_act="gelu", hidden_activation="gelu_pytorch_tanh"))
    m = GemmaForCausalLM(cfg).model.layers[0].mlp.act_fn
    print(f"probe: hidden_act=gelu hidden_activation=gelu_pytorch_tanh -> {type(m).__name__} "
          f"{getattr(m, 'approximate', '')}")


GEN_FIXTURES = ["mha", "mqa", "gqa", "f16", "bf16"]
GEN_LENGTHS = [5, 9, 3]
GEN_NEW = 8


def record_generate(name, seed):
    """generate.safetensors of fixture `name` (its checkpoint as saved; nothing else rewritten)."""
    path = os.path.join(ROOT, name)
    model = GemmaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    vocab, pad = model.config.vocab_size, model.config.pad_token_id
    T = max(GEN_LENGTHS)
    ids = torch.full((len(GEN_LENGTHS), T), pad, dtype=torch.long)
    mask = torch.zeros((len(GEN_LENGTHS), T), dtype=torch.long)
    for b, n in enumerate(GEN_LENGTHS):
        ids[b, T - n:] = torch.randint(3, vocab, (n,), generator=gen)  # no pad, eos or bos inside
        mask[b, T - n:] = 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=GEN_NEW,
                             pad_token_id=pad,
                             eos_token_id=model.config.eos_token_id)
    new = out[:, T:]
    if new.shape[1] < GEN_NEW:  # every sequence ended early
        new = torch.cat([new, torch.full((new.shape[0], GEN_NEW - new.shape[1]), pad, dtype=torch.long)], 1)
    save_file({"input_ids": ids.contiguous(), "attention_mask": mask.contiguous(), "generated": new.contiguous()},
              os.path.join(path, "generate.safetensors"), metadata={"format": "pt"})
    print(f"{name}: generate {new.tolist()}")


def main():
    print(f"transformers {transformers.__version__} torch {torch.__version__}")
    if sys.argv[1:2] == ["--generate"]:
        for i, name in enumerate(sys.argv[2:] or GEN_FIXTURES):
            record_generate(name, seed=4321 + i)
        return
    probe_activation()
    names = sys.argv[1:] or list(FIXTURES)
    for i, name in enumerate(names):
        overrides, dtype, shard = FIXTURES[name]
        make(name, overrides, dtype, shard, seed=1234 + i)
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write("HF parity fixtures written by scripts/make_fixtures.py with transformers "
                f"{transformers.__version__} and torch {torch.__version__}. Do not edit by hand.\n")


if __name__ == "__main__":
    main()
