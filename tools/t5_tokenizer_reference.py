#!/usr/bin/env python3
"""Token ids of the tiny T5 SentencePiece tokenizer (models/test/tiny-sd3/tokenizer_3/spiece.model, the same model as
tiny-flux-*/tokenizer_2/) from Debian's python3-sentencepiece, for the engine's T5Tokenizer test.

Each case is what Hugging Face's T5TokenizerFast(text, padding="max_length", max_length=L, truncation=True) gives for these
models (SD3's tokenizer_3 and FLUX's tokenizer_2): the SentencePiece ids, cut to L − 1, then </s> (1), then <pad> (0) up to L.
"raw" is SentencePiece's own encoding without EOS or padding.

    /usr/bin/python3 tools/t5_tokenizer_reference.py
writes tests/LocalDiffusion.Tests/TestData/Tokenizer/t5_tiny_ids.json (under a second).
"""
import json
import os
import sys
from pathlib import Path

import sentencepiece as spm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flow_test_nets as nets  # noqa: E402

MODEL = nets.ROOT / "tiny-sd3" / "tokenizer_3" / "spiece.model"
OUT = Path(__file__).resolve().parents[1] / "tests" / "LocalDiffusion.Tests" / "TestData" / "Tokenizer" / "t5_tiny_ids.json"
TEXTS = [
    ("a photo of a red cat on a beach", 32),
    ("A Watercolor of a GOLDEN dragon, under the stars.", 32),
    ("", 16),
    ("   leading and   repeated   spaces   ", 32),
    ("zebra quokka 12345 !?", 32),
    ("a photo of a red cat on a beach, highly detailed, soft light, 8k, studio lighting, wide angle, bokeh", 16),
    ("a photo of a red cat", 8),
    ("tab\tand\nnewline", 32),
    ("café naïve ﬁsh ＦＵＬＬＷＩＤＴＨ", 32),
    ("a" * 40, 32),
]


def main():
    sp = spm.SentencePieceProcessor(model_file=str(MODEL))
    cases = []
    for text, length in TEXTS:
        raw = sp.encode(text)
        cases.append({"text": text, "max_length": length, "raw": raw,
                      "ids": nets.t5_ids(MODEL, [text], length)[0].tolist()})
    data = {"source": "tools/t5_tokenizer_reference.py", "model": "models/test/tiny-sd3/tokenizer_3/spiece.model",
            "sentencepiece_version": spm.__version__, "cases": cases}
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
