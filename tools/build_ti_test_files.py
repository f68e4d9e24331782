#!/usr/bin/env python3
"""Build models/test/ti/: text encoders with a standard CLIP token-embedding table, textual-inversion files in the
formats people share, and the reference conditioning the engine's textual-inversion tests compare against.

Why a new encoder: tools/test_model_nets.TextEncoder embeds ids through a factorised a[id % 256] + b[id // 256] (to stay
small over CLIP's 49408 ids), which has no [vocab, width] table to extend. These encoders use the tiny tokenizer's own
vocabulary (1014 ids) as transformers' CLIPTextModel does: `token_embedding(input_ids.view(-1, L))` (a Gather on a
[1014, width] initializer fed by input_ids through Cast/Reshape) plus `position_embedding(position_ids)` (a Gather on a
[77, width] initializer fed by a constant), CLIP-style blocks (test_model_nets.TransformerBlock), a final LayerNorm and
pooling at argmax(input_ids) (the EOS, CLIP's highest id).

Writes (seeded, byte-identical on rebuild with the same torch/onnx):
  models/test/ti/sd15/text_encoder.onnx        width 32, int32 input_ids (diffusers script form): tiny's UNet fits it
  models/test/ti/sdxl/text_encoder.onnx        width 32, int64 ids, last_hidden_state, pooler_output, hidden_states.0..2
  models/test/ti/sdxl/text_encoder_2.onnx      width 48, int64 ids, text_embeds [B,16], last_hidden_state, hidden_states.0..2
  models/test/ti/embeddings/sd15/*             SD 1.x embeddings (width 32):
      a1111-style.pt       torch.save of A1111's dict (string_to_token, string_to_param {'*': [2,32]}, name, step,
                           sd_checkpoint, sd_checkpoint_name), as modules/textual_inversion's Embedding.save writes it
      kohya-style.safetensors   {"emb_params": [3,32]} float16, as kohya's train_textual_inversion saves SD 1.x
      cat-toy.safetensors  diffusers' learned_embeds form {"<cat-toy>": [32]} (one 1-D vector)
      toy-bin.bin          diffusers' older learned_embeds.bin: torch.save({"<toy>": [1,32]})
      old-paramdict.pt     the original textual_inversion repository's form: string_to_param a torch.nn.ParameterDict
  models/test/ti/embeddings/sdxl/xl-pair.safetensors   {"clip_l": [2,32], "clip_g": [2,48]} (kohya's SDXL form)
  models/test/ti/embeddings/bad/wide.safetensors        {"emb_params": [1,48]}: a width the SD 1.x encoder does not have
  models/test/ti/sd3/text_encoder.onnx         SD 3's CLIP-L form: width 32, int64 ids, text_embeds [B,32] (projection),
                                               last_hidden_state, hidden_states.0..2 (tiny-sd3's widths: pooled 32 + 48)
  models/test/ti/sd3/text_encoder_2.onnx       SD 3's CLIP-G form: width 48, text_embeds [B,48], the same outputs
                           (FLUX's CLIP-L is sdxl/text_encoder.onnx: width 32 with pooler_output [B,32], as tiny-flux's)
  models/test/ti/flow/g-only.safetensors        {"emb_params": [2,48]}: one set of CLIP-G width (SD 3's text_encoder_2 only)
  models/test/ti/flow/odd-width.safetensors     {"emb_params": [1,40]}: a width neither CLIP encoder has
  models/test/ti/flow/narrow-pair.safetensors   {"clip_l": [1,24], "clip_g": [1,48]}: a pair whose clip_l width is wrong
  tests/LocalDiffusion.Tests/TestData/TextualInversion/reference.json   the conditioning of each case below, and each
                           file's vectors as float32 ("l": SD 1.x / clip_l, "g": clip_g; kohya's as float16 rounds them)

Each reference case is a prompt made of text segments and embedding names. Its ids are BOS + BPE(text) with each
embedding's vectors at new rows (1014, 1015, …, A1111 splices the vectors at those positions) + EOS + padding; the
outputs are computed in torch with the table extended by those rows (torch.cat(table, vectors), then the same network),
pooled at the first EOS (A1111 puts id 0 at the embedding positions, so CLIP's argmax finds the EOS).

SD 3 and FLUX cases (models "sd3", "flux"): each CLIP encoder takes the vectors of its width (a pair's clip_l / clip_g, a
one-set file on the encoder of its width); an encoder the embedding has no vectors for reads its name as plain text (the
BPE of the name), as T5 does. SD 3 keeps each encoder's hidden_states[-2] and text_embeds, FLUX CLIP-L's pooler_output.

    /usr/bin/python3 tools/build_ti_test_files.py    (after tools/build_test_models.py; a few seconds)
"""
import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clip_bpe import ClipBpe  # noqa: E402
from test_model_nets import SEQ_LEN, TransformerBlock  # noqa: E402

SEED = 20261206
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "test" / "ti"
TOKENIZER = ROOT / "models" / "test" / "tiny" / "tokenizer"
REFERENCE = ROOT / "tests" / "LocalDiffusion.Tests" / "TestData" / "TextualInversion" / "reference.json"


class TableTextEncoder(nn.Module):
    """A CLIP text transformer with transformers' embedding layout (see the module docstring)."""

    def __init__(self, vocab: int, dim: int, projection: int | None = None, layers: int = 2):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(SEQ_LEN, dim)
        self.register_buffer("position_ids", torch.arange(SEQ_LEN)[None, :], persistent=False)
        self.blocks = nn.ModuleList(TransformerBlock(dim, 2) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.register_buffer("causal", torch.full((SEQ_LEN, SEQ_LEN), -1e4).triu(1), persistent=False)
        self.projection = nn.Linear(dim, projection, bias=False) if projection else None
        with torch.no_grad():
            self.token_embedding.weight.normal_(0, 0.5)
            self.position_embedding.weight.normal_(0, 0.5)

    def states(self, input_ids, table=None):
        """Every hidden state (embeddings, each block's output) and the final-norm output; `table` replaces the token table."""
        ids = input_ids.view(-1, input_ids.shape[-1]).long()
        length = ids.shape[1]
        tokens = self.token_embedding(ids) if table is None else F.embedding(ids, table)
        h = tokens + self.position_embedding(self.position_ids[:, :length])
        mask = self.causal[:length, :length]
        states = [h]
        for block in self.blocks:
            h = block(h, mask)
            states.append(h)
        return states, self.final_norm(h)

    def outputs(self, states, last, eos):
        pooled = torch.gather(last, 1, eos[:, None, None].expand(-1, 1, last.shape[2])).squeeze(1)
        if self.projection is not None:
            return (self.projection(pooled), last, *states)
        return (last, pooled, *states)

    def forward(self, input_ids):
        states, last = self.states(input_ids)
        # CLIP pools at argmax(input_ids), cast to int32 as transformers' export does.
        eos = input_ids.to(torch.int32).argmax(dim=-1).long()
        return self.outputs(states, last, eos)


class Sd15Encoder(nn.Module):
    """SD 1.x export form: last_hidden_state and pooler_output only."""

    def __init__(self, inner: TableTextEncoder):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids):
        last, pooled, *_ = self.inner(input_ids)
        return last, pooled


def export(model, path, ids_dtype, outputs):
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.randint(0, 1000, (1, SEQ_LEN), dtype=ids_dtype)
    axes = {"input_ids": {0: "batch"}, **{n: {0: "batch"} for n in outputs}}
    torch.onnx.export(model, (ids,), str(path), input_names=["input_ids"], output_names=outputs, dynamic_axes=axes,
                      opset_version=17, do_constant_folding=True)


def save_safetensors(path: Path, tensors: dict, metadata: dict | None = None):
    """safetensors' layout (8-byte header length, JSON header, data), written here because the package is not installable."""
    header, blobs, offset = {}, [], 0
    names = {torch.float32: "F32", torch.float16: "F16"}
    for key, tensor in tensors.items():
        data = tensor.contiguous().numpy().tobytes()
        header[key] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes with spaces
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def embeddings(generator):
    def vectors(count, dim):
        return torch.randn(count, dim, generator=generator) * 0.5

    a1111 = vectors(2, 32)
    kohya = vectors(3, 32).half()
    cat = vectors(1, 32)[0]
    toy = vectors(1, 32)
    xl_l, xl_g = vectors(2, 32), vectors(2, 48)
    wide = vectors(1, 48)
    old = vectors(1, 32)

    folder = OUT / "embeddings"
    for sub in ("sd15", "sdxl", "bad"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    # modules/textual_inversion/textual_inversion.py, Embedding.save: the vector is trained with requires_grad.
    vec = a1111.clone().requires_grad_(True)
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vec}, "name": "a1111-style", "step": 1500,
                "sd_checkpoint": "e1441589", "sd_checkpoint_name": "tiny-ti"}, folder / "sd15" / "a1111-style.pt")
    # The original textual_inversion repository's (and early A1111's) form: string_to_param is a torch.nn.ParameterDict.
    torch.save({"string_to_token": {"*": 265}, "string_to_param": nn.ParameterDict({"*": nn.Parameter(old.clone())}),
                "name": "old-paramdict", "step": 6100}, folder / "sd15" / "old-paramdict.pt")
    save_safetensors(folder / "sd15" / "kohya-style.safetensors", {"emb_params": kohya})
    save_safetensors(folder / "sd15" / "cat-toy.safetensors", {"<cat-toy>": cat})
    torch.save({"<toy>": toy}, folder / "sd15" / "toy-bin.bin")
    save_safetensors(folder / "sdxl" / "xl-pair.safetensors", {"clip_g": xl_g, "clip_l": xl_l})
    save_safetensors(folder / "bad" / "wide.safetensors", {"emb_params": wide})
    return {
        "a1111-style": {"l": a1111},
        "kohya-style": {"l": kohya.float()},
        "cat-toy": {"l": cat[None, :]},
        "toy-bin": {"l": toy},
        "old-paramdict": {"l": old},
        "xl-pair": {"l": xl_l, "g": xl_g},
    }


def case_ids(bpe, segments, vocab, found, eos, pad):
    """ids with each embedding's vectors at new rows ≥ vocab (in order of first use), and the rows appended."""
    ids, extra = [bpe.vocab["<|startoftext|>"]], []
    for segment in segments:
        if isinstance(segment, str):
            ids += bpe.encode(segment)
        else:
            rows = found[segment["embedding"]]
            first = vocab + sum(e.shape[0] for e in extra)  # after the rows of the embeddings used before it
            ids += list(range(first, first + rows.shape[0]))
            extra.append(rows)
    ids.append(eos)
    return ids + [pad] * (SEQ_LEN - len(ids)), extra


def reference(encoder, ids, extra, sdxl_index):
    table = encoder.token_embedding.weight
    if extra:
        table = torch.cat([table, *extra], dim=0)
    ids_t = torch.tensor([ids])
    states, last = encoder.states(ids_t, table)
    eos = torch.tensor([ids.index(max(i for i in ids if i < encoder.token_embedding.num_embeddings))])
    out = encoder.outputs(states, last, eos)
    return out


def flat(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).numpy().astype(np.float32)]


def flow_cases(bpe, vocab, eos, flux_clip, found, generator):
    """SD 3's table encoders and files, and the SD 3 / FLUX reference cases (made after everything above, so that the
    earlier files keep their bytes: the global and file generators continue where they were)."""
    sd3_l = TableTextEncoder(vocab, 32, projection=32).eval()
    sd3_g = TableTextEncoder(vocab, 48, projection=48).eval()
    hidden = [f"hidden_states.{i}" for i in range(3)]
    with torch.no_grad():
        export(sd3_l, OUT / "sd3" / "text_encoder.onnx", torch.int64, ["text_embeds", "last_hidden_state", *hidden])
        export(sd3_g, OUT / "sd3" / "text_encoder_2.onnx", torch.int64, ["text_embeds", "last_hidden_state", *hidden])
    g_only = torch.randn(2, 48, generator=generator) * 0.5
    odd = torch.randn(1, 40, generator=generator) * 0.5
    narrow_l, narrow_g = torch.randn(1, 24, generator=generator) * 0.5, torch.randn(1, 48, generator=generator) * 0.5
    save_safetensors(OUT / "flow" / "g-only.safetensors", {"emb_params": g_only})
    save_safetensors(OUT / "flow" / "odd-width.safetensors", {"emb_params": odd})
    save_safetensors(OUT / "flow" / "narrow-pair.safetensors", {"clip_g": narrow_g, "clip_l": narrow_l})
    found = dict(found, **{"g-only": {"g": g_only}})
    pad_g = bpe.vocab["!"]  # tokenizer_2's pad_token (SD 3's CLIP-G tokenizer pads with "!")

    def emb(name):
        return {"embedding": name}

    def ids_for(segments, width_key):
        """The encoder's ids: an embedding with vectors for it (width_key "l" or "g") takes new rows, any other is text."""
        own = {k: v[width_key] for k, v in found.items() if width_key in v}
        kept = [s if isinstance(s, str) or s["embedding"] in own else s["embedding"] for s in segments]
        return kept, own

    sd3_cases = {
        "plain": ["a red circle on a blue background"],
        "pair": ["a red circle ", emb("xl-pair"), " on a blue background"],
        "single_l": ["a ", emb("a1111-style"), " square"],
        "single_g": ["a ", emb("g-only"), " square"],
        "mixed": [emb("xl-pair"), " and ", emb("a1111-style"), " and ", emb("g-only"), " stars"],
    }
    flux_cases = {
        "plain": ["a red circle on a blue background"],
        "pair": ["a red circle ", emb("xl-pair"), " on a blue background"],
        "single": ["a ", emb("cat-toy"), " and a ", emb("kohya-style"), " star"],
    }
    cases = []
    with torch.no_grad():
        for name, segments in sd3_cases.items():
            prompt = "".join(s if isinstance(s, str) else s["embedding"] for s in segments)
            seg_l, own_l = ids_for(segments, "l")
            seg_g, own_g = ids_for(segments, "g")
            ids1, extra1 = case_ids(bpe, seg_l, vocab, own_l, eos, eos)
            ids2, extra2 = case_ids(bpe, seg_g, vocab, own_g, eos, pad_g)
            out1 = reference(sd3_l, ids1, extra1, None)
            out2 = reference(sd3_g, ids2, extra2, None)
            # SD 3 conditions on hidden_states[-2] of both CLIPs and their projections (text_embeds).
            cases.append({"model": "sd3", "name": name, "prompt": prompt, "ids": ids1, "ids_2": ids2,
                          "penultimate_1": flat(out1[2 + 1]), "penultimate_2": flat(out2[2 + 1]),
                          "text_embeds_1": flat(out1[0]), "text_embeds_2": flat(out2[0])})
        for name, segments in flux_cases.items():
            prompt = "".join(s if isinstance(s, str) else s["embedding"] for s in segments)
            seg_l, own_l = ids_for(segments, "l")
            ids1, extra1 = case_ids(bpe, seg_l, vocab, own_l, eos, eos)
            out1 = reference(flux_clip, ids1, extra1, None)
            # FLUX reads CLIP-L's pooled output only.
            cases.append({"model": "flux", "name": name, "prompt": prompt, "ids": ids1, "pooler_output": flat(out1[1])})
    return cases


def main() -> int:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(SEED + 1)
    bpe = ClipBpe(TOKENIZER)
    vocab = len(bpe.vocab)
    eos = bpe.vocab["<|endoftext|>"]
    sd15 = TableTextEncoder(vocab, 32).eval()
    xl1 = TableTextEncoder(vocab, 32).eval()
    xl2 = TableTextEncoder(vocab, 48, projection=16).eval()
    hidden = [f"hidden_states.{i}" for i in range(3)]
    with torch.no_grad():
        export(Sd15Encoder(sd15), OUT / "sd15" / "text_encoder.onnx", torch.int32, ["last_hidden_state", "pooler_output"])
        export(xl1, OUT / "sdxl" / "text_encoder.onnx", torch.int64, ["last_hidden_state", "pooler_output", *hidden])
        export(xl2, OUT / "sdxl" / "text_encoder_2.onnx", torch.int64, ["text_embeds", "last_hidden_state", *hidden])
    found = embeddings(generator)

    def emb(name):
        return {"embedding": name}

    sd15_cases = {
        "plain": ["a red circle on a blue background"],
        "a1111_two_vectors": ["a red circle ", emb("a1111-style"), " on a blue background"],
        "kohya_three_vectors_fp16": [emb("kohya-style"), " a green square"],
        "diffusers_one_vector_and_bin": ["a ", emb("cat-toy"), " and a ", emb("toy-bin"), " star"],
    }
    sdxl_cases = {
        "plain": ["a red circle on a blue background"],
        "pair_two_vectors": ["a red circle ", emb("xl-pair"), " on a blue background"],
    }
    cases = []
    with torch.no_grad():
        for name, segments in sd15_cases.items():
            ids, extra = case_ids(bpe, segments, vocab, {k: v["l"] for k, v in found.items()}, eos, eos)
            last, _ = reference(sd15, ids, extra, None)[:2]
            prompt = "".join(s if isinstance(s, str) else s["embedding"] for s in segments)
            cases.append({"model": "sd15", "name": name, "prompt": prompt, "ids": ids, "last_hidden_state": flat(last)})
        for name, segments in sdxl_cases.items():
            ids1, extra1 = case_ids(bpe, segments, vocab, {k: v["l"] for k, v in found.items()}, eos, eos)
            ids2, extra2 = case_ids(bpe, segments, vocab, {k: v["g"] for k, v in found.items() if "g" in v}, eos, 0)
            out1 = reference(xl1, ids1, extra1, None)
            out2 = reference(xl2, ids2, extra2, None)
            prompt = "".join(s if isinstance(s, str) else s["embedding"] for s in segments)
            # SDXL conditions on hidden_states[-2] of both encoders (the second-to-last of hidden_states.0..2).
            cases.append({"model": "sdxl", "name": name, "prompt": prompt, "ids": ids1, "ids_2": ids2,
                          "penultimate_1": flat(out1[2 + 1]), "penultimate_2": flat(out2[2 + 1]), "text_embeds": flat(out2[0])})
    cases += flow_cases(bpe, vocab, eos, xl1, found, generator)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps({"source": "tools/build_ti_test_files.py (torch, table extended with the vectors)",
                                     "vocab": vocab, "cases": cases,
                                     "vectors": {k: {s: flat(t) for s, t in v.items()} for k, v in found.items()}}) + "\n")
    print(f"wrote {OUT} and {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
