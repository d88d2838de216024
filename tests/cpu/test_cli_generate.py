#!/usr/bin/env python3
"""`gemmatron generate` end to end on the CPU: batching does not change a prompt's tokens, seeded
sampling repeats (and another seed differs), the byte vocabulary and a tokenizer.json (through the
Python tokenizers package) give text in and out, stop strings cut the text, --fp8 runs from a
`gemmatron calibrate` directory (its banner and --bench say FP8; batch 1 gives the batch's tokens),
--profile times one decode step op by op (its op classes and call counts), and every bad input is one
clear error (--fp8 without fp8_state.safetensors names `gemmatron calibrate`). argv[1] = the gemmatron binary."""
import json
import os
import subprocess
import sys
import tempfile

BIN = sys.argv[1]
passed = failed = 0


def check(ok, what):
    global passed, failed
    ok = bool(ok)
    print(("ok   " if ok else "FAIL ") + what)
    passed += ok
    failed += not ok


def gen(*args, env=None):
    e = dict(os.environ, GEMMATRON_PYTHON=sys.executable)
    e.update(env or {})
    p = subprocess.run([BIN, "generate", "--device", "cpu", *args], capture_output=True, text=True, timeout=120,
                       env=e)
    return p.returncode, p.stdout, p.stderr


def jsonl(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def main():
    tmp = tempfile.mkdtemp()
    prompts = [[2, 17, 40, 5, 9], [2, 33], [2, 7, 7, 100, 21, 140, 3, 12]]
    pf = os.path.join(tmp, "p.jsonl")
    with open(pf, "w") as f:
        for p in prompts:
            f.write(json.dumps({"ids": p}) + "\n")
    fx = "tests/fixtures/gqa"

    # a batch of unequal prompts gives each prompt's tokens alone
    rc, out, err = gen("--model", fx, "--prompts", pf, "--max-new-tokens", "10", "--jsonl")
    batch = jsonl(out)
    check(rc == 0 and len(batch) == 3, f"batch of 3 prompts runs ({err.strip()[-200:]})")
    for i, p in enumerate(prompts):
        rc, out, _ = gen("--model", fx, "--prompt-ids", " ".join(map(str, p)), "--max-new-tokens", "10", "--jsonl")
        one = jsonl(out)
        check(rc == 0 and one and batch and one[0]["ids"] == batch[i]["ids"] and one[0]["prompt_ids"] == p,
              f"prompt {i} alone == in the batch")
    check(all(len(r["ids"]) == 10 or r["finish"] == "eos" for r in batch), "10 new tokens or an EOS")

    # seeded sampling repeats; another seed differs; batch size does not matter
    samp = ["--model", fx, "--prompts", pf, "--max-new-tokens", "16", "--jsonl", "--temperature", "1.5"]
    a = jsonl(gen(*samp, "--seed", "3")[1])
    b = jsonl(gen(*samp, "--seed", "3", "--batch-size", "1")[1])
    c = jsonl(gen(*samp, "--seed", "4")[1])
    check(a and a == b, "seeded sampling repeats (batch 3 and batch 1)")
    check(a and c and [r["ids"] for r in a] != [r["ids"] for r in c], "another seed gives other tokens")

    # byte vocabulary: text in, text out, no Python; stop string
    tiny = ["--model", "configs/hf/tiny", "--random-init"]
    rc, out, err = gen(*tiny, "--prompt", "Hello", "--max-new-tokens", "20", "--jsonl",
                       env={"GEMMATRON_PYTHON": "/nonexistent"})
    r = jsonl(out)
    check(rc == 0 and r and r[0]["prompt_ids"] == [2] + [c + 3 for c in b"Hello"], f"byte prompt ids ({err[-200:]})")
    ids = [i for i in r[0]["ids"] if 3 <= i < 259] if r else []
    text = bytes(i - 3 for i in ids).decode("utf-8", "replace") if r else None
    check(r and r[0]["text"] is not None and r[0]["text"].encode("utf-8", "surrogateescape") is not None
          and (r[0]["text"] == text or r[0]["finish"] == "eos"), "byte text = the bytes of the ids")
    if r and len(ids) > 2:
        stop = bytes(ids[1] - 3 for _ in range(1)).decode("latin-1")
        rc, out, _ = gen(*tiny, "--prompt", "Hello", "--max-new-tokens", "20", "--jsonl", "--stop", stop)
        s = jsonl(out)
        check(rc == 0 and s and s[0]["finish"] == "stop" and stop not in s[0]["text"], "stop string ends and cuts")
        rc, out, _ = gen(*tiny, "--prompt", "Hello", "--max-new-tokens", "20", "--jsonl", "--stop", "\x01never",
                         "--stop", stop)
        s2 = jsonl(out)
        check(rc == 0 and s2 and s2[0] == s[0], "the second of two --stop strings ends it the same")
    rc, out, _ = gen(*tiny, "--prompts", write(tmp, "chat.jsonl", {"messages": [{"role": "user", "content": "hi"}]}),
                     "--max-new-tokens", "3", "--jsonl")
    r = jsonl(out)
    want = [2] + [c + 3 for c in b"<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"]
    check(rc == 0 and r and r[0]["prompt_ids"] == want, "chat messages rendered in Gemma's turn format")

    # a tokenizer.json through the tokenizers package
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers
        vocab = {"[UNK]": 0, "<eos>": 1, "<bos>": 2}
        for w in "the cat sat on a mat and dog ran".split():
            vocab[w] = len(vocab)
        tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        tk.pre_tokenizer = pre_tokenizers.Whitespace()
        tj = os.path.join(tmp, "tokenizer.json")
        tk.save(tj)
        rc, out, err = gen("--model", fx, "--tokenizer", tj, "--prompt", "the cat sat", "--max-new-tokens", "6",
                           "--jsonl", "--ignore-eos")
        r = jsonl(out)
        check(rc == 0 and r and r[0]["prompt_ids"] == [2, 3, 4, 5], f"tokenizer.json encodes ({err[-300:]})")
        check(r and r[0]["text"] == tk.decode(r[0]["ids"], skip_special_tokens=False), "tokenizer.json decodes")
        big = Tokenizer(models.WordLevel({f"w{i}": i for i in range(200)}, unk_token="w0"))
        bj = os.path.join(tmp, "big.json")
        big.save(bj)
        bad("tokenizer larger than the model's vocabulary", ["--model", fx, "--tokenizer", bj, "--prompt", "w1"],
            "do not belong together")
    except ImportError:
        print(f"skip tokenizer.json: {sys.executable} has no tokenizers package (scripts/install-deps.sh)")

    # --fp8 from a calibrated directory (random in-vocabulary calibration tokens)
    shard = os.path.join(tmp, "cal.bin")
    subprocess.run([sys.executable, "scripts/random_shard.py", "--out", shard, "--count", "400",
                    "--vocab", "160"], check=True)
    cal = os.path.join(tmp, "gqa-fp8")
    p = subprocess.run([BIN, "calibrate", "--model", fx, "--data", shard, "--out", cal, "--steps", "2", "--seq-len", "32",
                        "--device", "cpu", "--set", "fp8.history_len=4", "--set", "fp8.lm_head=true"],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"calibrate the fixture ({p.stderr[-200:]})")
    rc, out, err = gen("--model", cal, "--fp8", "--prompts", pf, "--max-new-tokens", "10", "--jsonl", "--bench")
    f8 = jsonl(out)
    check(rc == 0 and len(f8) == 3 and "FP8 GEMMs (12 of 12 layer GEMMs + lm_head, scales of " + cal in err
          and "GEMMs FP8" in err, f"generate --fp8: 3 completions, banner and bench say FP8 ({err.strip()[-300:]})")
    one = jsonl(gen("--model", cal, "--fp8", "--prompts", pf, "--max-new-tokens", "10", "--jsonl", "--batch-size", "1")[1])
    check(f8 and one == f8, "generate --fp8: batch 1 gives the tokens of batch 3")
    rc, out, err = gen("--model", cal, "--prompts", pf, "--max-new-tokens", "2", "--jsonl", "--bench")
    check(rc == 0 and "GEMMs BF16" in err and "FP8" not in err, "without --fp8 a calibrated directory runs BF16")
    bad("--fp8 without an FP8 state", ["--model", fx, "--fp8", "--prompt-ids", "2 3"],
        "has no fp8_state.safetensors (the FP8 scales): make an FP8-calibrated directory with `gemmatron calibrate")

    # --profile: one decode step op by op; the gqa fixture has 3 layers, so 3 * 4 GEMMs + the lm_head,
    # a KV write and a decode attention per layer, one argmax (greedy), 2 norms per layer + the final one
    rc, out, err = gen("--model", fx, "--prompts", pf, "--max-new-tokens", "4", "--jsonl", "--profile")
    rows = {}
    for line in err.splitlines():
        parts = line.split()
        for name in ("matmul fwd", "kv write", "attention decode", "argmax", "rmsnorm fwd"):
            if line.startswith(name + " ") and parts[len(name.split())].isdigit():
                rows[name] = int(parts[len(name.split())])
    want = {"matmul fwd": 13, "kv write": 3, "attention decode": 3, "argmax": 1, "rmsnorm fwd": 7}
    check(rc == 0 and rows == want and "profile of one decode step, batch 3" in err,
          f"generate --profile: op classes and calls of one decode step {rows} ({err.strip()[-200:]})")
    rc, out2, err = gen("--model", fx, "--prompts", pf, "--max-new-tokens", "4", "--jsonl", "--profile", "--bench")
    check(rc == 0 and jsonl(out2) == jsonl(out) and "unprofiled" in err and "bench: time to first token" in err,
          "generate --profile --bench: the same tokens, the profiled step beside the unprofiled one")

    # bad input: one clear line each
    bad("prompt longer than the context", ["--model", fx, "--prompt-ids", " ".join(["5"] * 70)],
        "longer than the model's context of 64")
    bad("empty prompt", ["--model", fx, "--prompt-ids", ""], "prompt 1 is empty")
    bad("empty text prompt", tiny + ["--prompt", ""], "prompt 1 is empty")
    bad("--max-new-tokens 0", ["--model", fx, "--prompt-ids", "2 3", "--max-new-tokens", "0"],
        "--max-new-tokens must be an integer >= 1", code=2)
    bad("token id outside the vocabulary", ["--model", fx, "--prompt-ids", "2 160"], "outside the vocabulary")
    bad("byte tokenizer on a 160-token model", ["--model", fx, "--tokenizer", "byte", "--prompt", "hi"],
        "do not belong together")
    bad("text without a tokenizer", ["--model", fx, "--prompt", "hi"], "need a tokenizer")
    print(f"test_cli_generate: {passed} passed, {failed} failed")
    return 1 if failed else 0


def write(tmp, name, rec):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(json.dumps(rec) + "\n")
    return path


def bad(what, args, needle, code=1):
    rc, out, err = gen(*args)
    lines = [l for l in err.splitlines() if l.startswith("gemmatron")]
    check(rc == code and not out and len(lines) == 1 and needle in lines[0],
          f"{what}: exit {rc}, one line: {lines[-1] if lines else err[-200:]!r}")


if __name__ == "__main__":
    sys.exit(main())
