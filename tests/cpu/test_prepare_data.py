"""scripts/prepare_data.py: the shards it writes, read back by an independent parser of the format
in data/shard.h, hold exactly the expected ids and attribute bytes for text, prompt/response (prompt
tokens are not targets) and chat documents (only the model turns are); gemmatron reads them; bad
input fails with a message naming the line; the bundled demo shards are what the tool makes from
the bundled JSONL; --tokenizer byte is --byte; and, when the `tokenizers` package is present, an HF tokenizer.json is used.
argv[1] is the gemmatron binary."""
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.getcwd()
TOOL = os.path.join(ROOT, "scripts", "prepare_data.py")
FAILS = []
PASSED = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    (PASSED if ok else FAILS).append(what)


def read_shard(path):
    """An independent reader: header fields, ids, attributes."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"GTTOKENS", "magic"
    version, flags, count, vocab = struct.unpack_from("<IIQI", b, 8)
    assert version == 1 and flags == 1 and b[28:64] == bytes(36), "header"
    assert len(b) == 64 + 5 * count, "size"
    ids = list(struct.unpack_from(f"<{count}I", b, 64))
    attrs = list(b[64 + 4 * count:])
    return ids, attrs, vocab


def run_tool(tmp, records, *extra):
    src = os.path.join(tmp, "in.jsonl")
    with open(src, "w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    out = os.path.join(tmp, "out.bin")
    p = subprocess.run([sys.executable, TOOL, "--input", src, "--output", out, *extra],
                       capture_output=True, text=True)
    return p, out


def byte_ids(s):
    return [c + 3 for c in s.encode("utf-8")]


def test_byte_documents(tmp):
    prompt, response = "Q: 2+2?\nA:", " 4"
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}]
    p, out = run_tool(tmp, [{"text": "ab"}, {"prompt": prompt, "response": response}, {"messages": chat}], "--byte")
    check(p.returncode == 0, f"byte tokenizer run: {p.stderr.strip()}")
    ids, attrs, vocab = read_shard(out)
    check(vocab == 259, f"vocabulary 259 recorded (got {vocab})")
    T, S = 1, 2  # target bit, document-start bit
    want_ids = [2] + byte_ids("ab") + [1]
    want_attr = [S] + [T, T] + [T]
    want_ids += [2] + byte_ids(prompt) + byte_ids(response) + [1]
    want_attr += [S] + [0] * len(byte_ids(prompt)) + [T] * len(byte_ids(response)) + [T]
    turns = [("<start_of_turn>user\n", 0), ("Be brief.\n\nHi", 0), ("<end_of_turn>", 0), ("\n", 0),
             ("<start_of_turn>model\n", 0), ("Hello!", T), ("<end_of_turn>", T), ("\n", 0)]
    want_ids += [2]
    want_attr += [S]
    for text, a in turns:
        want_ids += byte_ids(text)
        want_attr += [a] * len(byte_ids(text))
    check(ids == want_ids, "ids of text, prompt/response and chat documents")
    check(attrs == want_attr, "attributes: bos starts documents, prompt and user turns are not targets")
    # The prompt/response document: its prompt bytes are exactly the non-targets after bos.
    start = 4
    n_prompt = len(byte_ids(prompt))
    check(all(a == 0 for a in attrs[start + 1:start + 1 + n_prompt]) and attrs[start + 1 + n_prompt] == T,
          "every prompt token is masked and the response starts the targets")
    shard = open(out, "rb").read()
    os.remove(out)  # the next run must write it
    p, out = run_tool(tmp, [{"text": "ab"}, {"prompt": prompt, "response": response}, {"messages": chat}],
                      "--tokenizer", "byte")
    check(p.returncode == 0 and open(out, "rb").read() == shard, "--tokenizer byte writes the shard --byte writes")
    return out


def test_gemmatron_reads(binary, shard):
    p = subprocess.run([binary, "eval", "--model", "configs/hf/tiny", "--data", shard, "--device", "cpu"],
                       capture_output=True, text=True)
    # configs/hf/tiny has no weights: the shard must pass the reader and fail only at the weights.
    check(p.returncode == 1 and "model.safetensors" in p.stderr and shard not in p.stderr,
          f"gemmatron accepts the shard (stderr: {p.stderr.strip()})")


def test_errors(tmp):
    cases = [
        (["{\"text\": \"a\"}", "not json"], "line 2: not JSON"),
        ([{"prompt": "a"}], "line 1: 'prompt' and 'response' must both be strings"),
        ([{"messages": [{"role": "robot", "content": "x"}]}], "unknown role 'robot'"),
        ([{"title": "x"}], "line 1: expected a string 'text'"),
    ]
    for records, phrase in cases:
        p, out = run_tool(tmp, records, "--byte")
        check(p.returncode != 0 and phrase in p.stderr and "in.jsonl" in p.stderr,
              f"bad input -> '{phrase}' (got rc {p.returncode}: {p.stderr.strip()})")


def test_split_and_shards(tmp):
    docs = [{"text": "x" * 10} for _ in range(10)]
    val = os.path.join(tmp, "val.bin")
    p, out = run_tool(tmp, docs, "--byte", "--shard-tokens", "30", "--val-output", val, "--val-fraction", "0.2")
    check(p.returncode == 0, f"split run: {p.stderr.strip()}")
    stem = out[:-4]
    shards = [f"{stem}-{i:05d}.bin" for i in range(4)]
    sizes = [len(read_shard(s)[0]) for s in shards]
    check(sizes == [24, 24, 24, 24] and not os.path.exists(f"{stem}-00004.bin"),
          f"8 training documents of 12 tokens in shards of at most 30 tokens: {sizes}")
    vid, vattr, _ = read_shard(val)
    check(len(vid) == 24 and vattr.count(2) == 2, "the last 2 documents go to validation")


def test_demo_is_reproducible(tmp):
    for split in ("train", "val"):
        out = os.path.join(tmp, f"{split}.bin")
        p = subprocess.run([sys.executable, TOOL, "--byte", "--input", f"data/demo/{split}.jsonl", "--output", out],
                           capture_output=True, text=True)
        same = p.returncode == 0 and open(out, "rb").read() == open(f"data/demo/{split}.bin", "rb").read()
        check(same, f"data/demo/{split}.bin is what the tool makes from data/demo/{split}.jsonl")


def test_hf_tokenizer(tmp):
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers
    except ImportError:
        print("skip HF tokenizer case: the Python package `tokenizers` is not installed")
        return
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "hello": 3, "world": 4, "good": 5, "bye": 6, "[UNK]": 7}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = os.path.join(tmp, "tokenizer.json")
    tok.save(path)
    p, out = run_tool(tmp, [{"prompt": "hello world", "response": "good bye"}], "--tokenizer", path,
                      "--vocab-size", "16")
    check(p.returncode == 0, f"HF tokenizer run: {p.stderr.strip()}")
    ids, attrs, vocab_size = read_shard(out)
    check(ids == [2, 3, 4, 5, 6, 1] and attrs == [2, 0, 0, 1, 1, 1] and vocab_size == 16,
          f"HF tokenizer.json: ids {ids}, attributes {attrs}, vocabulary {vocab_size}")


def main():
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        shard = test_byte_documents(tmp)
        test_gemmatron_reads(binary, shard)
        test_errors(tmp)
        test_split_and_shards(tmp)
        test_demo_is_reproducible(tmp)
        test_hf_tokenizer(tmp)
    print(f"prepare_data: {len(PASSED)} passed, {len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
