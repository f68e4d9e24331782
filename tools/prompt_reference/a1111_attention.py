#!/usr/bin/env python3
"""Reference parses for the engine's attention-syntax parser (src/LocalDiffusion/PromptEncoding/PromptAttention.cs):
AUTOMATIC1111's own parse_prompt_attention, imported at run time from a stable-diffusion-webui checkout's
modules/prompt_parser.py (never committed here), run on every prompt in PROMPTS.

The module imports lark at load (Debian: apt-get install python3-lark) and torch. For each prompt the output holds
the list of [text, weight] pairs A1111 returns (weights as Python floats, written with repr so they read back exactly;
a BREAK is ["BREAK", -1]), or the name of the exception it raises (an unreadable weight such as "1..2" is a
ValueError from float()).

    git clone https://github.com/AUTOMATIC1111/stable-diffusion-webui webui
    /usr/bin/python3 tools/prompt_reference/a1111_attention.py webui/modules/prompt_parser.py "webui @ <commit>"
writes tests/LocalDiffusion.Tests/TestData/PromptEncoding/a1111_attention.json, recording the file's sha256 and the
label given. The committed file came from modules/prompt_parser.py as of AUTOMATIC1111's commit 73c74baa (merge of
PR #13797, November 2023; its re_attention and parse_prompt_attention read the same in the upstream file at 28bd8e1),
taken from a git history that carries the upstream commits (a snapshot of the upstream repository itself was over the
size this project's tooling can fetch).
Older webui versions read "(a: 1.25 )" as text: their weight pattern allowed no spaces around the number.
"""
import hashlib
import importlib.util
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "LocalDiffusion.Tests", "TestData",
                   "PromptEncoding", "a1111_attention.json")

PROMPTS = [
    # the examples in parse_prompt_attention's docstring
    "normal text",
    "an (important) word",
    "(unbalanced",
    "\\(literal\\]",
    "(unnecessary)(parens)",
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    # brackets, weights and escapes
    "a [b] c",
    "[[b]]",
    "((a))",
    "(((a)))",
    "[a:1.5]",
    "(a:1.5:2)",
    "(a:-0.5) b",
    "(a: 1.25 ) b",
    "(a:+2)",
    "(a:.5)",
    "(a:5.)",
    "((a:1.2) b:0.8)",
    "[(a:1.5) b]",
    "a (b [c (d:0.7)] e",
    "unclosed [square",
    "stray ) and ] close",
    "\\\\ backslash, a\\ b, \\ (c)",
    "((a][:b:c",
    "ratio 16:9",
    "word:1.3)",
    ": lone colon (x:)",
    "(empty:1.2)() [] (:1.5)",
    # BREAK
    "a cat BREAK a dog",
    "a break BREAKFAST",
    "BREAK",
    "a BREAK BREAK b",
    "(cat:1.2) BREAK (dog:0.8)",
    "(a BREAK b:1.3)",
    "multi\nline BREAK\ttabs",
    # the engine's own test prompts
    "a (red:1.5) circle on a [blue] background",
    "a (forest:1.5) [field]",
    "(forest:1.5) BREAK field",
    "the BREAK field",
    "ratio 16:9, a \\(literal\\) word",
    # refused: float() cannot read the weight
    "(cat:1..2)",
    "a (cat:1.2.3)",
    "(blurry:1..2)",
]


def load(path):
    spec = importlib.util.spec_from_file_location("a1111_prompt_parser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_prompt_attention


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    path = sys.argv[1]
    parse = load(path)
    cases = []
    for prompt in PROMPTS:
        try:
            cases.append({"prompt": prompt, "parsed": [[text, float(weight)] for text, weight in parse(prompt)]})
        except Exception as e:  # noqa: BLE001 - the exception's kind is the expected result
            cases.append({"prompt": prompt, "error": type(e).__name__})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    header = {"source": "tools/prompt_reference/a1111_attention.py",
              "prompt_parser": sys.argv[2] if len(sys.argv) == 3 else path,
              "prompt_parser_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
              "python_version": sys.version.split()[0]}
    with open(OUT, "w") as f:  # one case a line
        f.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
