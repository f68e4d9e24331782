#!/usr/bin/env python3
"""Build the shapes model's CLIP-format tokenizer from a seeded caption corpus (uses tools/clip_bpe.py)."""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import clip_bpe  # noqa: E402
from world import sample_scene  # noqa: E402


def corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [sample_scene(rng)["caption"] for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="tokenizer folder to write (models/shapes/tokenizer)")
    parser.add_argument("--captions", type=int, default=20000)
    parser.add_argument("--merges", type=int, default=1000, help="upper bound; the corpus runs out of pairs first")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    captions = corpus(args.captions, args.seed)
    merges = clip_bpe.build(captions, args.merges, args.out)
    tok = clip_bpe.ClipBpe(args.out)
    print(f"{len(captions)} captions, {len(merges)} merges, vocab {len(tok.vocab)} -> {args.out}")
    for c in captions[:3]:
        print(f"  {c!r} -> {[tok.decoder[i] for i in tok.encode(c)]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
