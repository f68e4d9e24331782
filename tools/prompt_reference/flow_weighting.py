#!/usr/bin/env python3
"""Reference conditioning of A1111-weighted prompts on models/test/tiny-sd3 and tiny-flux-dev (the engine's FlowEmphasis).

The torch text encoders are rebuilt from their seeds exactly as tools/build_sd3_test_model.py and
tools/build_flux_test_model.py build them (the tiny models' ONNX files are their export). Each prompt's A1111 runs are
written out by hand below (the parse itself is checked against A1111's parser by tools/prompt_reference/a1111_attention.py);
then, independently of the engine:
  CLIP ids: BOS + the runs' BPE tokens, each run tokenized on its own (tools/clip_bpe.py), cut to 75, + EOS, padded
    (SD 3's tokenizer/ and FLUX's with EOS, SD 3's tokenizer_2/ with "!" = 0); each token carries its run's weight;
  T5 ids: each run's SentencePiece ids (python3-sentencepiece, a call per run), cut to max_sequence_length - 1, + </s> (1),
    padded with <pad> (0); each piece carries its run's weight;
  emphasis (A1111's EmphasisOriginal.after_transformers, in numpy float32): per encoder and per prompt row,
    z <- z * w[:, None]; z <- z * (mean(z before) / mean(z after)) — on CLIP-L's and CLIP-G's hidden_states[-2] and on T5's
    last hidden state; pooled outputs are the unweighted encoders' (FLUX: CLIP-L's pooler_output of the markup-free ids);
  SD 3: prompt_embeds = cat(cat(clip_l, clip_g) zero-padded to T5's width, t5) on the sequence axis, pooled = cat(pooled_l, pooled_g);
  FLUX: prompt_embeds = the weighted T5 states.

    PYTHONPATH=/tmp/diffusers/src:tools /usr/bin/python3 tools/prompt_reference/flow_weighting.py
writes tests/LocalDiffusion.Tests/TestData/PromptEncoding/flow_weighting.json (a few seconds).
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import flow_test_nets as nets  # noqa: E402
from clip_bpe import ClipBpe  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "PromptEncoding", "flow_weighting.json")
SD3_SEED = 20270   # tools/build_sd3_test_model.py's SEED
FLUX_SEED = 20280  # tools/build_flux_test_model.py's SEED (dev and schnell share these encoders)
MAX_SEQ = 16
UP, DOWN = 1.1, 1 / 1.1

CASES = [
    dict(model="sd3", name="weighted",
         prompt="a photo of a (red cat:1.5) on a [beach], \\(sunny\\)",
         runs=[("a photo of a ", 1.0), ("red cat", 1.5), (" on a ", 1.0), ("beach", DOWN), (", (sunny)", 1.0)]),
    dict(model="flux", name="weighted",
         prompt="a (watercolor:1.3) of a ((golden)) dragon under the [[stars]]",
         runs=[("a ", 1.0), ("watercolor", 1.3), (" of a ", 1.0), ("golden", UP * UP), (" dragon under the ", 1.0),
               ("stars", DOWN * DOWN)]),
]


def floats(a):
    return [float(str(np.float32(v))) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def clip_row(bpe, runs, pad):
    tokens, weights = [], []
    for text, weight in runs:
        ids = bpe.encode(text)
        tokens += ids
        weights += [weight] * len(ids)
    tokens, weights = tokens[:75], weights[:75]
    ids = [bpe.vocab["<|startoftext|>"]] + tokens + [bpe.vocab["<|endoftext|>"]]
    w = [1.0] + weights + [1.0]
    return ids + [pad] * (77 - len(ids)), w + [1.0] * (77 - len(w))


def t5_row(model_path, runs, length):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    tokens, weights = [], []
    for text, weight in runs:
        ids = sp.encode(text)
        tokens += ids
        weights += [weight] * len(ids)
    tokens, weights = tokens[:length - 1] + [1], weights[:length - 1] + [1.0]
    return tokens + [0] * (length - len(tokens)), weights + [1.0] * (length - len(weights))


def emphasis(z, weights):
    """A1111's 'Original' emphasis on one row [L, D] (float32)."""
    z = np.asarray(z, dtype=np.float32)
    before = z.mean()
    z = z * np.asarray(weights, dtype=np.float32)[:, None]
    after = z.mean()
    return z * (before / after)


def sd3_case(case):
    clip_l, clip_g = nets.clip_encoders(SD3_SEED, projection=True)
    t5 = nets.t5_encoder(SD3_SEED + 1)
    folder = nets.ROOT / "tiny-sd3"
    bpe = ClipBpe(folder / "tokenizer")
    ids_l, w_l = clip_row(bpe, case["runs"], bpe.vocab["<|endoftext|>"])
    ids_g, w_g = clip_row(bpe, case["runs"], 0)
    ids_t5, w_t5 = t5_row(folder / "tokenizer_3" / "spiece.model", case["runs"], MAX_SEQ)
    with torch.no_grad():
        pooled_l, _, *states_l = clip_l(torch.tensor([ids_l]))
        pooled_g, _, *states_g = clip_g(torch.tensor([ids_g]))
        t5_states = t5(torch.tensor([ids_t5]))[0].numpy()
    z_l = emphasis(states_l[-2][0].numpy(), w_l)
    z_g = emphasis(states_g[-2][0].numpy(), w_g)
    z_t5 = emphasis(t5_states, w_t5)
    clip = np.concatenate([z_l, z_g], axis=-1)
    clip = np.pad(clip, ((0, 0), (0, z_t5.shape[-1] - clip.shape[-1])))
    embeds = np.concatenate([clip, z_t5], axis=0)
    pooled = np.concatenate([pooled_l[0].numpy(), pooled_g[0].numpy()])
    return dict(ids=ids_l, ids_2=ids_g, ids_3=ids_t5, weights=floats(w_l), weights_3=floats(w_t5),
                prompt_embeds=floats(embeds), pooled=floats(pooled))


def flux_case(case):
    clip_l, _ = nets.clip_encoders(FLUX_SEED, projection=False)
    t5 = nets.t5_encoder(FLUX_SEED + 1)
    folder = nets.ROOT / "tiny-flux-dev"
    bpe = ClipBpe(folder / "tokenizer")
    ids, _ = clip_row(bpe, case["runs"], bpe.vocab["<|endoftext|>"])
    ids_t5, w_t5 = t5_row(folder / "tokenizer_2" / "spiece.model", case["runs"], MAX_SEQ)
    with torch.no_grad():
        _, pooled, *_ = clip_l(torch.tensor([ids]))
        t5_states = t5(torch.tensor([ids_t5]))[0].numpy()
    return dict(ids=ids, ids_2=ids_t5, weights_2=floats(w_t5), prompt_embeds=floats(emphasis(t5_states, w_t5)),
                pooled=floats(pooled[0].numpy()))


def main():
    torch.set_num_threads(1)
    out = dict(max_sequence_length=MAX_SEQ, cases=[])
    for case in CASES:
        result = sd3_case(case) if case["model"] == "sd3" else flux_case(case)
        out["cases"].append(dict(model=case["model"], name=case["name"], prompt=case["prompt"], **result))
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
