#!/usr/bin/env python3
"""A token shard of random ids, for calibration and benchmarks where the data's content does not
matter (random weights have no real text to prefer):

  python3 scripts/random_shard.py --out FILE --count N --vocab V [--low 3] [--seed 0]

N ids drawn uniformly from [low, V) (the default skips Gemma's pad, eos and bos) with
random.Random(seed), written by prepare_data.write_shard without attributes (every token a target,
no document boundaries). Standard library only."""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_data import write_shard  # noqa: E402


def random_ids(count, vocab, low=3, seed=0):
    r = random.Random(seed)
    return [r.randrange(low, vocab) for _ in range(count)]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="shard file to write")
    p.add_argument("--count", type=int, required=True, help="token ids")
    p.add_argument("--vocab", type=int, required=True, help="vocabulary recorded in the shard; ids below it")
    p.add_argument("--low", type=int, default=3, help="smallest id (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of random.Random (default 0)")
    a = p.parse_args(argv)
    if a.count < 1 or not 0 <= a.low < a.vocab:
        p.error(f"need --count >= 1 and 0 <= --low < --vocab (got {a.count}, {a.low}, {a.vocab})")
    write_shard(a.out, random_ids(a.count, a.vocab, a.low, a.seed), None, a.vocab)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
