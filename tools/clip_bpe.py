#!/usr/bin/env python3
"""Train a CLIP-format byte-level BPE tokenizer on a caption corpus.

Writes a folder shaped exactly like a Stable Diffusion `tokenizer/`:
  vocab.json               256 byte-unicode chars, the same 256 + "</w>", one entry per merge (in rank order),
                           then <|startoftext|> and <|endoftext|> as the last two ids
  merges.txt               "#version: 0.2" then the merges in rank order
  special_tokens_map.json  and tokenizer_config.json as Hugging Face's CLIPTokenizer writes them

Text goes through CLIP's own normalisation (html unescape twice, whitespace collapse, strip, Python str.lower();
ftfy is not applied: captions given to the trainer are expected to be clean) and CLIP's pre-split regex
(special tokens | 's 't 're 've 'm 'll 'd | letter runs | one digit | runs of other non-space characters),
evaluated per code point with Unicode categories. Training is deterministic: the most frequent adjacent pair
wins, ties go to the lexicographically smallest pair, and a pair whose merged string is already a token is
never merged (so every merge adds exactly one new id, as vocab.json requires).

Module use:  train_bpe(captions, n_merges) -> merges;  write_tokenizer(out_dir, merges);  build(...)
CLI:         clip_bpe.py --corpus captions.txt --merges 500 --out DIR [--verify-with DIR_WITH_REAL_CLIP_FILES]
"""
from __future__ import annotations

import argparse
import heapq
import html
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"
MODEL_MAX_LENGTH = 77
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable unicode character map, in CLIP's vocab order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


BYTE_ENCODER = bytes_to_unicode()


def normalize(text: str) -> str:
    """CLIP's basic_clean (minus ftfy) + whitespace_clean + lower."""
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_number(ch: str) -> bool:
    return unicodedata.category(ch).startswith("N")


def pre_split(text: str) -> list[str]:
    """CLIP's regex, alternative by alternative, on already-normalised text."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        special = next((s for s in (BOS, EOS) if text.startswith(s, i)), None)
        if special:
            words.append(special)
            i += len(special)
            continue
        contraction = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
        if contraction:
            words.append(contraction)
            i += len(contraction)
            continue
        j = i + 1
        if _is_letter(ch):
            while j < n and _is_letter(text[j]):
                j += 1
        elif not _is_number(ch):
            while j < n and not (text[j].isspace() or _is_letter(text[j]) or _is_number(text[j])):
                j += 1
        words.append(text[i:j])
        i = j
    return words


def word_symbols(word: str) -> tuple[str, ...]:
    """A pre-split word as byte-unicode symbols, the last one carrying the end-of-word suffix."""
    chars = [BYTE_ENCODER[b] for b in word.encode("utf-8")]
    return tuple(chars[:-1]) + (chars[-1] + END_OF_WORD,)


def base_vocab() -> list[str]:
    chars = list(BYTE_ENCODER.values())
    return chars + [c + END_OF_WORD for c in chars]


def _pairs(symbols: tuple[str, ...]) -> Counter:
    return Counter(zip(symbols, symbols[1:]))


def _merge_word(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def train_bpe(captions: list[str], n_merges: int) -> list[tuple[str, str]]:
    """Learn up to n_merges merges (fewer when the corpus runs out of pairs), in rank order."""
    word_counts: Counter = Counter()
    for caption in captions:
        for word in pre_split(normalize(caption)):
            if word not in (BOS, EOS):
                word_counts[word] += 1
    words = [word_symbols(w) for w in sorted(word_counts)]
    freqs = [word_counts[w] for w in sorted(word_counts)]

    pair_counts: Counter = Counter()
    where: defaultdict = defaultdict(set)  # pair -> indices of words that contain it
    for idx, symbols in enumerate(words):
        for pair, k in _pairs(symbols).items():
            pair_counts[pair] += k * freqs[idx]
            where[pair].add(idx)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    known = set(base_vocab())
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -neg or -neg <= 0:
            continue  # stale heap entry
        merged = pair[0] + pair[1]
        if merged in known:
            pair_counts[pair] = 0  # would duplicate a vocab string: never merge it
            continue
        known.add(merged)
        merges.append(pair)
        changed: set = set()
        for idx in sorted(where[pair]):
            old = words[idx]
            new = _merge_word(old, pair)
            if new == old:
                continue
            for p, k in _pairs(old).items():
                pair_counts[p] -= k * freqs[idx]
                changed.add(p)
            for p, k in _pairs(new).items():
                pair_counts[p] += k * freqs[idx]
                where[p].add(idx)
                changed.add(p)
            words[idx] = new
        for p in sorted(changed):
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
    return merges


def _added_token(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_tokenizer(out_dir: str | Path, merges: list[tuple[str, str]]) -> dict[str, int]:
    """Write vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json; return the vocab."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokens = base_vocab() + [a + b for a, b in merges] + [BOS, EOS]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("duplicate token strings in vocab: merges must each produce a new token")
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    special_map = {
        "bos_token": _added_token(BOS),
        "eos_token": _added_token(EOS),
        "pad_token": EOS,
        "unk_token": _added_token(EOS),
    }
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n", encoding="utf-8")
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(vocab[BOS]): {**_added_token(BOS), "special": True},
            str(vocab[EOS]): {**_added_token(EOS), "special": True},
        },
        "bos_token": BOS,
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": EOS,
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": EOS,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": EOS,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return vocab


class ClipBpe:
    """CLIP's encoder as simple_tokenizer.py runs it, loaded from a written tokenizer folder (for checks)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").strip().split("\n")[1:]
        self.ranks = {tuple(line.split()): rank for rank, line in enumerate(lines)}
        self.decoder = {i: t for t, i in self.vocab.items()}
        self.byte_decoder = {c: b for b, c in BYTE_ENCODER.items()}

    def bpe(self, word: str) -> list[str]:
        symbols = list(word_symbols(word))
        while len(symbols) > 1:
            pairs = set(zip(symbols, symbols[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            symbols = list(_merge_word(tuple(symbols), best))
        return symbols

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in pre_split(normalize(text)):
            ids.extend([self.vocab[word]] if word in (BOS, EOS) else [self.vocab[s] for s in self.bpe(word)])
        return ids

    def ids77(self, text: str) -> list[int]:
        """[BOS] + ids[:75] + [EOS], padded with EOS (SD1.x convention)."""
        bos, eos = self.vocab[BOS], self.vocab[EOS]
        ids = [bos] + self.encode(text)[: MODEL_MAX_LENGTH - 2] + [eos]
        return ids + [eos] * (MODEL_MAX_LENGTH - len(ids))

    def decode(self, ids: list[int]) -> str:
        text = "".join(self.decoder[i] for i in ids)
        raw = bytearray(self.byte_decoder[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace(END_OF_WORD, " ").strip()


def self_check(folder: str | Path, captions: list[str], n_merges: int) -> None:
    """Re-read the written files the way CLIP does and check they tokenize the corpus sensibly."""
    folder = Path(folder)
    tok = ClipBpe(folder)
    vocab = tok.vocab
    n_merges_written = len(tok.ranks)
    assert len(vocab) == 512 + n_merges_written + 2, "vocab size != 512 + merges + 2"
    assert vocab[BOS] == len(vocab) - 2 and vocab[EOS] == len(vocab) - 1, "special tokens are not the last two ids"
    assert n_merges_written <= n_merges
    for rank, (a, b) in enumerate(tok.ranks):
        assert vocab[a + b] == 512 + rank, f"merge {rank} '{a} {b}' has the wrong vocab id"
    total_chars = total_tokens = 0
    for caption in captions:
        ids = tok.encode(caption)
        assert tok.decode(ids) == " ".join(pre_split(normalize(caption))), f"round trip failed for {caption!r}"
        total_chars += len(normalize(caption))
        total_tokens += len(ids)
    # A tokenizer that learned anything compresses its own corpus well below one token per character.
    if n_merges_written >= 100:
        assert total_tokens < 0.5 * total_chars, f"{total_tokens} tokens for {total_chars} chars: merges are not applied"
    for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert key in json.loads((folder / "special_tokens_map.json").read_text())
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == MODEL_MAX_LENGTH and config["tokenizer_class"] == "CLIPTokenizer"


def verify_encoder(reference_dir: str | Path) -> int:
    """Check ClipBpe against openai simple_tokenizer output (tokenizer_cases.json beside the real CLIP vocab).

    Only cases that need no ftfy step are compared (ASCII text without '&'); returns how many were compared.
    """
    reference_dir = Path(reference_dir)
    tok = ClipBpe(reference_dir)
    cases = json.loads((reference_dir / "tokenizer_cases.json").read_text(encoding="utf-8"))
    compared = 0
    for case in cases:
        text = case["text"]
        if not text.isascii() or "&" in text or any(ord(c) < 32 and c not in "\t\n\r" for c in text):
            continue
        got = tok.ids77(text)
        if got != case["ids"]:
            raise AssertionError(f"encoder disagrees with CLIP on {text!r}: {got[:12]} vs {case['ids'][:12]}")
        compared += 1
    return compared


def build(captions: list[str], n_merges: int, out_dir: str | Path) -> list[tuple[str, str]]:
    """Train, write and self-check; the one call other tools use."""
    merges = train_bpe(captions, n_merges)
    write_tokenizer(out_dir, merges)
    self_check(out_dir, captions, n_merges)
    return merges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="UTF-8 text file, one caption per line")
    parser.add_argument("--merges", type=int, required=True, help="number of merges to learn")
    parser.add_argument("--out", required=True, help="tokenizer folder to write")
    parser.add_argument("--verify-with", help="folder with the real CLIP vocab.json, merges.txt, tokenizer_cases.json: "
                        "check this script's encoder against openai's tokenizer first")
    args = parser.parse_args(argv)
    if args.verify_with:
        print(f"encoder matches CLIP on {verify_encoder(args.verify_with)} reference cases")
    captions = [line for line in Path(args.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    merges = build(captions, args.merges, args.out)
    tok = ClipBpe(args.out)
    print(f"{len(merges)} merges, vocab {len(tok.vocab)} -> {args.out}")
    for caption in captions[:3]:
        ids = tok.encode(caption)
        print(f"  {caption!r} -> {[tok.decoder[i] for i in ids]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
