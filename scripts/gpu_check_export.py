#!/usr/bin/env python3
"""Checks a `gemmatron export` directory with transformers (scripts/gpu_finetune.sh export).

  gpu_check_export.py ids --shard runs/gpu/data/val.bin --count 512 --out ids.txt
      the first COUNT token ids of a gemmatron shard (data/shard.h) as a text file, which
      `gemmatron eval` reads as ONE sequence without document masking (positions 0..COUNT-1, full
      causal attention): exactly what transformers computes for input_ids of that row.

  gpu_check_export.py compare --model EXPORT_DIR --ids ids.txt --logits gt.npy [--gt-loss L]
                              [--tol 4e-2] [--loss-tol 5e-3] [--bf16-band] [--checkpoint CK]
      loads EXPORT_DIR with AutoModelForCausalLM.from_pretrained(dtype=float32, eager attention) on
      the GPU, computes the logits and loss of ids.txt, and compares with `gemmatron eval --logits
      gt.npy` on the same directory and ids: relative norm error ||gt - hf|| / ||hf|| <= --tol, and
      the loss (--gt-loss, gemmatron's eval_loss) within --loss-tol relative. --bf16-band also loads
      the directory in bfloat16 and prints HF's own bf16-vs-fp32 error on the same ids (what BF16
      costs; scripts/hf_bf16_error.py measures the same on the fixtures). --checkpoint CK checks the
      exported weights bit for bit: an F32 export must equal the checkpoint's FP32 master weights
      (optimizer.safetensors NAME.master), a BF16 export the checkpoint's BF16 weights
      (model*.safetensors) and the masters rounded to bfloat16.
      Last line: `EXPORT <label> PASS|FAIL ...`; exit status 0 on PASS, 1 on FAIL.
Needs numpy; compare needs torch, transformers and safetensors (the GPU machine).
"""
import argparse
import glob
import os
import struct
import sys

import numpy as np


def read_shard_ids(path, count):
    """The first count ids of a shard: 64-byte header (GTTOKENS, version, flags, count u64, vocab
    u32), then count u32 ids, little-endian (scripts/prepare_data.py write_shard)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:8] != b"GTTOKENS":
            sys.exit(f"{path}: not a gemmatron shard")
        _, _, n, vocab = struct.unpack("<IIQI", head[8:28])
        if count > n:
            sys.exit(f"{path}: {n} tokens, fewer than the {count} asked for")
        return np.frombuffer(f.read(4 * count), dtype="<u4"), vocab


def cmd_ids(a):
    ids, vocab = read_shard_ids(a.shard, a.count)
    with open(a.out, "w") as f:
        f.write(" ".join(str(int(x)) for x in ids) + "\n")
    print(f"ids: {a.count} tokens of {a.shard} (vocabulary {vocab}) -> {a.out}")
    return 0


def safetensors_tensors(directory):
    """name -> (file, name) over every *.safetensors file of directory."""
    from safetensors import safe_open
    where = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.safetensors"))):
        with safe_open(path, framework="pt") as f:
            for k in f.keys():
                where[k] = path
    return where


def check_weights(export_dir, ckpt, lines):
    """Bit-exactness of the exported tensors against the checkpoint. Returns ok."""
    import torch
    from safetensors import safe_open
    exp = safetensors_tensors(export_dir)
    opt = os.path.join(ckpt, "optimizer.safetensors")
    ck = {k: v for k, v in safetensors_tensors(ckpt).items() if not v.endswith(("optimizer.safetensors",
                                                                                "fp8_state.safetensors"))}
    if not os.path.exists(opt):
        lines.append(f"weights: {opt} missing: not checked")
        return True
    n_equal = n_ck_equal = n_ck = 0
    dtypes = set()
    with safe_open(opt, framework="pt") as fo:
        for name, path in sorted(exp.items()):
            with safe_open(path, framework="pt") as fe:
                t = fe.get_tensor(name)
            dtypes.add(str(t.dtype).replace("torch.", ""))
            master = fo.get_tensor(name + ".master")
            n_equal += torch.equal(t, master.to(t.dtype))
            if t.dtype == torch.bfloat16 and name in ck:
                with safe_open(ck[name], framework="pt") as fc:
                    c = fc.get_tensor(name)
                n_ck += 1
                n_ck_equal += c.dtype == t.dtype and torch.equal(t, c)
    ok = n_equal == len(exp) and n_ck_equal == n_ck
    what = f"{len(exp)} tensors ({'/'.join(sorted(dtypes))})"
    lines.append(f"weights: {what}: {n_equal} bitwise equal to the checkpoint's FP32 masters (cast to the export's "
                 f"dtype)" + (f", {n_ck_equal}/{n_ck} to its BF16 weights" if n_ck else "") +
                 f": {'PASS' if ok else 'FAIL'}")
    return ok


def rel(a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def hf_forward(model_dir, ids, dtype, device):
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager").to(device).eval()
    x = torch.tensor(ids, dtype=torch.long, device=device)[None]
    with torch.no_grad():
        out = m(input_ids=x, labels=x)
    logits = out.logits[0].float().cpu().numpy()
    loss = out.loss.item()
    del m, out
    if device == "cuda":
        torch.cuda.empty_cache()
    return logits, loss


def cmd_compare(a):
    import torch
    torch.set_float32_matmul_precision("highest")  # the float32 reference: no TF32
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with open(a.ids) as f:
        ids = [int(x) for x in f.read().split()]
    gt = np.load(a.logits)
    lines, ok = [], True
    if gt.shape[0] != len(ids):
        print(f"EXPORT {a.label} FAIL: {a.logits} has {gt.shape[0]} rows, {a.ids} {len(ids)} ids")
        return 1
    hf, hf_loss = hf_forward(a.model, ids, torch.float32, device)
    if gt.shape != hf.shape:
        print(f"EXPORT {a.label} FAIL: gemmatron logits {gt.shape}, transformers {hf.shape}")
        return 1
    e = rel(gt, hf)
    ok = e <= a.tol
    lines.append(f"logits [{gt.shape[0]}, {gt.shape[1]}]: ||gemmatron - hf|| / ||hf|| = {e:.3e} (tol {a.tol:g}: "
                 f"{'PASS' if e <= a.tol else 'FAIL'}), max |diff| {np.abs(gt - hf).max():.3g}, "
                 f"argmax agreement {100 * np.mean(gt.argmax(1) == hf.argmax(1)):.1f}%")
    if a.gt_loss is not None:
        le = abs(a.gt_loss - hf_loss) / abs(hf_loss)
        ok = ok and le <= a.loss_tol
        lines.append(f"loss: gemmatron {a.gt_loss:.6f} vs hf {hf_loss:.6f}, rel {le:.2e} (tol {a.loss_tol:g}: "
                     f"{'PASS' if le <= a.loss_tol else 'FAIL'})")
    if a.bf16_band:
        hb, hb_loss = hf_forward(a.model, ids, torch.bfloat16, device)
        lines.append(f"band: transformers' own bf16 vs its fp32 on the same ids: logits rel {rel(hb, hf):.3e}, "
                     f"loss rel {abs(hb_loss - hf_loss) / abs(hf_loss):.2e}")
    if a.checkpoint:
        ok = check_weights(a.model, a.checkpoint, lines) and ok
    for line in lines:
        print(f"  {a.label}: {line}")
    print(f"EXPORT {a.label} {'PASS' if ok else 'FAIL'}: logits rel err {e:.3e} (tol {a.tol:g})"
          + (f", loss {a.gt_loss:.5f} vs hf {hf_loss:.5f}" if a.gt_loss is not None else ""))
    return 0 if ok else 1


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ids", help="the first ids of a shard as a text file")
    s.add_argument("--shard", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="transformers on an export vs gemmatron eval --logits")
    c.add_argument("--model", required=True, help="the exported HF directory")
    c.add_argument("--ids", required=True, help="text file of token ids (one sequence)")
    c.add_argument("--logits", required=True, help="gemmatron eval --logits output (.npy)")
    c.add_argument("--gt-loss", type=float, default=None, help="gemmatron eval's eval_loss on the same ids")
    c.add_argument("--tol", type=float, default=4e-2, help="logits relative norm error allowed")
    c.add_argument("--loss-tol", type=float, default=5e-3, help="relative loss difference allowed")
    c.add_argument("--bf16-band", action="store_true", help="also print HF bf16 vs HF fp32")
    c.add_argument("--checkpoint", default=None, help="checkpoint the export came from: weights bit for bit")
    c.add_argument("--label", default="export")
    c.add_argument("--device", default=None, help="default: cuda when available")
    a = p.parse_args(argv)
    return cmd_ids(a) if a.cmd == "ids" else cmd_compare(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
