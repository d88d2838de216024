#!/usr/bin/env python3
"""Turns JSONL into gemmatron token shards (the format of data/shard.h).

Each input line is one document, one of:
  {"text": "..."}                      every token a target
  {"prompt": "...", "response": "..."} only the response (and the closing eos) are targets
  {"messages": [{"role": "user"|"model"|"assistant"|"system", "content": "..."}, ...]}
      rendered with Gemma's turn format
        <start_of_turn>user\\n{content}<end_of_turn>\\n<start_of_turn>model\\n{content}<end_of_turn>\\n
      "assistant" is written as "model"; a "system" message is put before the next user turn's
      content, separated by a blank line (Gemma has no system role). Only the model turns' content
      and their <end_of_turn> are targets.
Every document starts with bos, which carries the document-start bit and is not a target; text and
prompt/response documents end with eos (a target: the model learns to stop).

Tokenizers: --tokenizer PATH (an HF tokenizer.json, through the `tokenizers` package; bos/eos are
the tokens named by --bos/--eos) or --byte, also written --tokenizer byte (ids = bytes + 3, pad 0,
eos 1, bos 2, vocabulary 259; the tokenizer of the bundled demo). --vocab-size sets the vocabulary
recorded in the shard (default: the tokenizer's); gemmatron refuses a shard whose vocabulary differs
from the model's.

Output: --output FILE, or with --shard-tokens N, FILE's stem + "-00000.bin", ... of at most N tokens
(whole documents). --val-output FILE --val-fraction F sends the last F of the documents there.
"""
import argparse
import json
import os
import struct
import sys
from array import array

MAGIC = b"GTTOKENS"
VERSION = 1
FLAG_ATTR = 1
TARGET = 1
DOC_START = 2
HEADER_BYTES = 64


def write_shard(path, tokens, attrs, vocab_size):
    """Writes one shard exactly as data/shard.c does: header, u32 ids, u8 attributes (all
    little-endian), through path.tmp and a rename. attrs None: a shard without attributes (flags
    0: every token a target, no document boundaries)."""
    if not tokens:
        raise ValueError(f"{path}: refusing to write a shard with no tokens")
    if attrs is not None and len(tokens) != len(attrs):
        raise ValueError(f"{path}: {len(tokens)} tokens but {len(attrs)} attribute bytes")
    bad = next((t for t in tokens if t < 0 or (vocab_size and t >= vocab_size)), None)
    if bad is not None:
        raise ValueError(f"{path}: token id {bad} is outside the vocabulary of {vocab_size}")
    header = MAGIC + struct.pack("<IIQI", VERSION, 0 if attrs is None else FLAG_ATTR, len(tokens), vocab_size)
    header += bytes(HEADER_BYTES - len(header))
    ids = array("I", tokens)
    if sys.byteorder != "little":
        ids.byteswap()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(ids.tobytes())
        if attrs is not None:
            f.write(bytes(attrs))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ByteTokenizer:
    """ids = UTF-8 bytes + 3; 0 pad, 1 eos, 2 bos."""
    vocab_size = 259
    bos = 2
    eos = 1

    def encode(self, text):
        return [b + 3 for b in text.encode("utf-8")]


class HFTokenizer:
    def __init__(self, path, bos, eos):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            sys.exit("prepare_data.py: --tokenizer needs the Python package `tokenizers` "
                     "(pip install tokenizers)")
        self.tok = Tokenizer.from_file(path)
        self.vocab_size = self.tok.get_vocab_size(with_added_tokens=True)
        self.bos = self._id(path, bos)
        self.eos = self._id(path, eos)

    def _id(self, path, name):
        i = self.tok.token_to_id(name)
        if i is None:
            sys.exit(f"prepare_data.py: {path}: no token {name!r} (set --bos/--eos)")
        return i

    def encode(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids


class Doc:
    """A document being built: ids and their attribute bytes."""

    def __init__(self, tok):
        self.tok = tok
        self.ids = [tok.bos]
        self.attrs = [DOC_START]

    def add(self, text, target):
        ids = self.tok.encode(text)
        self.ids += ids
        self.attrs += [TARGET if target else 0] * len(ids)

    def add_id(self, i, target):
        self.ids.append(i)
        self.attrs.append(TARGET if target else 0)


def render_chat(doc, messages, where):
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list")
    system = None
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or "role" not in m:
            raise ValueError(f"{where}: message {k + 1} needs a 'role' and a string 'content'")
        role = {"assistant": "model"}.get(m["role"], m["role"])
        if role not in ("user", "model", "system"):
            raise ValueError(f"{where}: message {k + 1}: unknown role {m['role']!r} "
                             "(user, model, assistant or system)")
        if role == "system":
            system = m["content"] if system is None else system + "\n\n" + m["content"]
            continue
        content = m["content"]
        if role == "user" and system is not None:
            content, system = system + "\n\n" + content, None
        target = role == "model"
        doc.add(f"<start_of_turn>{role}\n", False)
        doc.add(content, target)
        doc.add("<end_of_turn>", target)
        doc.add("\n", False)
    if system is not None:
        raise ValueError(f"{where}: a system message must come before a user turn")


def make_doc(tok, rec, where):
    doc = Doc(tok)
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected a JSON object")
    if "messages" in rec:
        render_chat(doc, rec["messages"], where)
        return doc
    if "prompt" in rec or "response" in rec:
        if not isinstance(rec.get("prompt"), str) or not isinstance(rec.get("response"), str):
            raise ValueError(f"{where}: 'prompt' and 'response' must both be strings")
        doc.add(rec["prompt"], False)
        doc.add(rec["response"], True)
    elif isinstance(rec.get("text"), str):
        doc.add(rec["text"], True)
    else:
        raise ValueError(f"{where}: expected a string 'text', 'prompt'/'response', or 'messages'")
    doc.add_id(tok.eos, True)
    return doc


def read_docs(tok, paths):
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}: line {n}"
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: not JSON: {e.msg}") from None
                docs.append(make_doc(tok, rec, where))
    if not docs:
        raise ValueError(f"{', '.join(paths)}: no documents")
    return docs


def shard_paths(output, count):
    stem = output[:-4] if output.endswith(".bin") else output
    return [f"{stem}-{i:05d}.bin" for i in range(count)]


def write_docs(docs, output, vocab_size, shard_tokens):
    """Whole documents per shard; returns the files written."""
    groups, cur, n = [], [], 0
    for d in docs:
        if shard_tokens and cur and n + len(d.ids) > shard_tokens:
            groups.append(cur)
            cur, n = [], 0
        cur.append(d)
        n += len(d.ids)
    groups.append(cur)
    paths = shard_paths(output, len(groups)) if shard_tokens else [output]
    for path, group in zip(paths, groups):
        ids = [i for d in group for i in d.ids]
        attrs = [a for d in group for a in d.attrs]
        write_shard(path, ids, attrs, vocab_size)
        targets = sum(a & TARGET for a in attrs)
        print(f"{path}: {len(group)} documents, {len(ids)} tokens, {targets} targets")
    return paths


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", action="append", required=True, help="JSONL file (repeatable)")
    p.add_argument("--output", required=True, help="shard file to write")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tokenizer", help="HF tokenizer.json, or 'byte' (the same as --byte)")
    src.add_argument("--byte", action="store_true", help="byte-level tokenizer (vocabulary 259)")
    p.add_argument("--bos", default="<bos>", help="bos token of --tokenizer (default <bos>)")
    p.add_argument("--eos", default="<eos>", help="eos token of --tokenizer (default <eos>)")
    p.add_argument("--vocab-size", type=int, default=0, help="vocabulary recorded in the shard")
    p.add_argument("--shard-tokens", type=int, default=0, help="split into shards of at most N tokens")
    p.add_argument("--val-output", help="shard file for the validation documents")
    p.add_argument("--val-fraction", type=float, default=0.0, help="fraction of documents for validation")
    a = p.parse_args(argv)
    if a.val_fraction and not a.val_output:
        p.error("--val-fraction needs --val-output")
    if not 0.0 <= a.val_fraction < 1.0:
        p.error("--val-fraction must be in [0, 1)")
    return a


def main(argv):
    a = parse_args(argv)
    byte = a.byte or a.tokenizer == "byte"
    tok = ByteTokenizer() if byte else HFTokenizer(a.tokenizer, a.bos, a.eos)
    vocab = a.vocab_size or tok.vocab_size
    if vocab < tok.vocab_size:
        sys.exit(f"prepare_data.py: --vocab-size {vocab} is smaller than the tokenizer's {tok.vocab_size}")
    try:
        docs = read_docs(tok, a.input)
        nval = int(round(len(docs) * a.val_fraction))
        if a.val_output and a.val_fraction and (nval == 0 or nval == len(docs)):
            raise ValueError(f"--val-fraction {a.val_fraction} of {len(docs)} documents leaves a split empty")
        write_docs(docs[:len(docs) - nval], a.output, vocab, a.shard_tokens)
        if nval:
            write_docs(docs[len(docs) - nval:], a.val_output, vocab, 0)
    except (ValueError, OSError) as e:
        sys.exit(f"prepare_data.py: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
