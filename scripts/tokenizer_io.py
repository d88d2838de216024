#!/usr/bin/env python3
"""Text <-> ids with a tokenizer.json, for `gemmatron generate` (train/tokenizer.c runs it).

  tokenizer_io.py vocab  TOKENIZER_JSON                 prints the vocabulary size (added tokens too)
  tokenizer_io.py encode TOKENIZER_JSON IN OUT          IN: one JSON list of strings a line (the
                                                        pieces of one prompt); OUT: one JSON list
                                                        of ids a line (pieces encoded without special
                                                        tokens, concatenated)
  tokenizer_io.py decode TOKENIZER_JSON IN OUT          IN: one JSON list of ids a line; OUT: one JSON
                                                        string a line (special tokens kept)
"""
import json
import sys


def main(argv):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("tokenizer_io.py: needs the Python package `tokenizers` (pip install tokenizers)")
    cmd, path = argv[1], argv[2]
    tok = Tokenizer.from_file(path)
    if cmd == "vocab":
        print(tok.get_vocab_size(with_added_tokens=True))
        return
    with open(argv[3], encoding="utf-8") as f, open(argv[4], "w", encoding="utf-8") as out:
        for line in f:
            rec = json.loads(line)
            if cmd == "encode":
                ids = []
                for piece in rec:
                    ids += tok.encode(piece, add_special_tokens=False).ids
                out.write(json.dumps(ids) + "\n")
            else:
                out.write(json.dumps(tok.decode(rec, skip_special_tokens=False)) + "\n")


if __name__ == "__main__":
    main(sys.argv)
