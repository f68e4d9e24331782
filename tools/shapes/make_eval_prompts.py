#!/usr/bin/env python3
"""Write models/shapes/eval_prompts.json: single-object prompt x seed cases with the attributes the picture must show.

Shapes and positions cycle so each appears equally often; colours, backgrounds, sizes and wordings are drawn
from a fixed seed. The C# end-to-end test and the Python sampler score the same cases.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from world import COLOR_NAMES, POSITIONS, SHAPES, SIZES, with_article


def cases(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    positions = list(POSITIONS)
    out = []
    for i in range(count):
        shape, pos = SHAPES[i % len(SHAPES)], positions[i % len(positions)]
        color = rng.choice(COLOR_NAMES)
        bg = rng.choice([c for c in COLOR_NAMES if c != color])
        size = rng.choice(list(SIZES))
        where = "in the center" if pos == "center" else f"on the {pos}" if pos in ("left", "right") else f"at the {pos}"
        prompt = (f"{with_article(f'{size} {color} {shape}')} {where} on {with_article(bg + ' background')}" if i % 2 == 0
                  else f"{bg} background with {with_article(f'{color} {shape}')} {where}")
        out.append({"prompt": prompt, "seed": 1000 + i, "color": color, "background": bg, "shape": shape,
                    "position": pos, "size": size if i % 2 == 0 else None})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "models" / "shapes" / "eval_prompts.json"))
    parser.add_argument("--count", type=int, default=45)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    doc = {
        "description": "Shapes model evaluation set: generate each prompt with its seed (empty negative prompt) and "
                       "check the picture's object colour, background colour, shape and position "
                       "(built by tools/shapes/make_eval_prompts.py).",
        "cases": cases(args.count, args.seed),
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(doc['cases'])} cases -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
