"""Networks and tokenizers for the tiny SD3 and FLUX test models (models/test/tiny-sd3, tiny-flux-schnell, tiny-flux-dev).

* A tiny T5 SentencePiece tokenizer, trained by Debian's python3-sentencepiece on a generated caption corpus (unigram,
  T5's special ids: <pad> 0, </s> 1, <unk> 2, no BOS), written as Hugging Face's T5Tokenizer folder holds it
  (spiece.model, tokenizer_config.json, special_tokens_map.json; no tokenizer.json, which only the `tokenizers` package
  writes).
* A tiny T5 v1.1 encoder in plain torch (transformers is not installable here), written from the T5 paper (Raffel et al.
  2020, §2.1) and transformers' documented T5 v1.1 configuration: token embedding without scaling; per layer pre-norm
  self-attention and a pre-norm gated-GELU feed-forward, each added back to the residual; "T5LayerNorm", an RMS norm
  without mean subtraction or bias (eps 1e-6); attention without the 1/√d scaling of queries and without biases; a learnt
  relative position bias over 32 bidirectional log-spaced buckets (max distance 128), computed in the first layer and
  shared by all; a final RMS norm. No attention mask, as SD3's and FLUX's pipelines call T5 without one.
* CLIP-like encoders from test_model_nets / build_sdxl_test_model (CLIPTextModelWithProjection's text_embeds for SD3,
  CLIPTextModel's pooler_output for FLUX).
* diffusers v0.31.0 classes (SD3Transformer2DModel, FluxTransformer2DModel, AutoencoderKL) at tiny configs, seeded.

Importing diffusers here: torch 1.13 has no F.scaled_dot_product_attention, which diffusers' SD3/FLUX attention processors
require, so `import_diffusers()` installs a plain softmax(q·kᵀ/√d)·v stand-in first (same maths; it exports to ONNX as
MatMul/Softmax); safetensors is not packaged by Debian, so a stand-in that refuses every use fills in for the import.
"""
from __future__ import annotations

import importlib.machinery
import json
import math
import sys
import types
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_sdxl_test_model import SdxlTextEncoder  # noqa: E402
from test_model_nets import TextEncoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "models" / "test"
T5_VOCAB = 320
T5_DIM, T5_HEADS, T5_KV, T5_FF, T5_LAYERS = 96, 4, 16, 128, 2
CLIP_L, CLIP_G = 32, 48


def import_diffusers():
    """Imports diffusers (v0.31.0 on PYTHONPATH) with the two stand-ins described in the module docstring."""
    if not hasattr(F, "scaled_dot_product_attention"):
        def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
            assert dropout_p == 0.0 and not is_causal
            scores = query @ key.transpose(-2, -1) * (scale if scale is not None else query.shape[-1] ** -0.5)
            if attn_mask is not None:
                scores = scores + attn_mask
            return torch.softmax(scores, dim=-1) @ value
        F.scaled_dot_product_attention = scaled_dot_product_attention
    try:
        import safetensors  # noqa: F401
    except ImportError:
        stub = types.ModuleType("safetensors")
        stub.torch = types.ModuleType("safetensors.torch")
        stub.__spec__ = importlib.machinery.ModuleSpec("safetensors", None)
        stub.torch.__spec__ = importlib.machinery.ModuleSpec("safetensors.torch", None)

        def refuse(*args, **kwargs):
            raise RuntimeError("safetensors is not installed (a stand-in for diffusers' import only)")
        stub.safe_open = stub.torch.load_file = stub.torch.save_file = stub.torch.load = refuse
        sys.modules["safetensors"] = stub
        sys.modules["safetensors.torch"] = stub.torch
    import diffusers
    assert diffusers.__version__ == "0.31.0", diffusers.__version__
    return diffusers


def affine_layer_norms(model: nn.Module) -> nn.Module:
    """Gives every LayerNorm without weights (elementwise_affine=False) a weight of ones and a bias of zeros: the same
    function, but torch 1.13's ONNX exporter writes an invalid LayerNormalization node for the weightless form."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            # torch's LayerNorm, or diffusers' own LayerNorm class (used on torch < 2.1), without weights
            if type(child).__name__ == "LayerNorm" and getattr(child, "weight", None) is None:
                shape = child.normalized_shape if isinstance(child, nn.LayerNorm) else child.dim
                setattr(parent, name, nn.LayerNorm(shape, eps=child.eps, elementwise_affine=True))
    return model


# ---------------------------------------------------------------------------------------------------------------- T5 tokenizer

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black", "pink", "gray", "golden", "silver"]
THINGS = ["cat", "dog", "house", "tree", "car", "boat", "mountain", "river", "castle", "robot", "flower", "bird", "city",
          "forest", "lighthouse", "dragon", "astronaut", "bicycle", "teapot", "garden"]
PLACES = ["on a beach", "in the snow", "at sunset", "in a forest", "under the stars", "in a busy street", "on the moon",
          "beside a lake", "in the rain", "on a table"]
STYLES = ["a photo of", "a painting of", "an illustration of", "a watercolor of", "a sketch of", "a 3d render of",
          "a close-up photograph of", "a cinematic shot of"]
EXTRAS = ["highly detailed", "soft light", "8k", "studio lighting", "wide angle", "bokeh", "oil on canvas", "trending art",
          "volumetric fog", "dramatic shadows", "pastel palette", "vintage film grain", "sharp focus", "minimalist composition",
          "intricate ornaments", "glowing neon", "misty morning", "reflections in puddles", "symmetrical framing",
          "warm autumn colours", "crystal clear water", "ancient ruins behind", "surrounded by butterflies",
          "with a happy expression", "wearing a knitted scarf", "made of glass", "made of wood", "carved in marble",
          "in the style of ukiyo-e", "isometric view", "aerial photography", "macro lens", "long exposure", "polaroid",
          "children's book", "comic panel", "pixel art", "low poly", "cyberpunk skyline", "steampunk gears"]


def captions(count: int = 4000) -> list[str]:
    """A deterministic caption corpus (no RNG: index arithmetic over the word lists)."""
    out = []
    for i in range(count):
        style = STYLES[i % len(STYLES)]
        colour = COLOURS[(i * 7) % len(COLOURS)]
        thing = THINGS[(i * 3 + i // 20) % len(THINGS)]
        place = PLACES[(i * 11 + i // 7) % len(PLACES)]
        text = f"{style} a {colour} {thing} {place}"
        if i % 3 == 0:
            text += f", {EXTRAS[(i // 3) % len(EXTRAS)]}"
        if i % 4 == 1:
            text += f", {EXTRAS[(i * 5 + 3) % len(EXTRAS)]}"
        if i % 5 == 0:
            text = text.capitalize() + "."
        out.append(text)
    return out


def train_t5_tokenizer(out_dir: Path, work: Path) -> Path:
    """Trains the tiny unigram SentencePiece model and writes the tokenizer folder; returns spiece.model's path."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "captions.txt"
    corpus.write_text("\n".join(captions()) + "\n")
    # The model records the trainer's input and prefix strings: relative names inside `work` keep it byte-reproducible.
    import os
    here = os.getcwd()
    os.chdir(work)
    try:
        spm.SentencePieceTrainer.train(
            input="captions.txt", model_prefix="spiece", vocab_size=T5_VOCAB, model_type="unigram",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
            character_coverage=1.0, num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
            normalization_rule_name="nmt_nfkc", hard_vocab_limit=False, minloglevel=2)
    finally:
        os.chdir(here)
    model = out_dir / "spiece.model"
    model.write_bytes((work / "spiece.model").read_bytes())
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    config = {"tokenizer_class": "T5Tokenizer", "model_max_length": 512, "extra_ids": 0, "additional_special_tokens": [],
              "legacy": True, "clean_up_tokenization_spaces": True,
              "added_tokens_decoder": {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                                                "single_word": False, "special": True}
                                       for i, c in ((0, "<pad>"), (1, "</s>"), (2, "<unk>"))},
              **special}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2, sort_keys=True) + "\n")
    return model


def t5_ids(model_path: Path, prompts, max_length: int):
    """What T5TokenizerFast(prompt, padding="max_length", max_length, truncation=True) gives for these models:
    the SentencePiece ids, cut to max_length − 1, then </s> (1), then <pad> (0) up to max_length."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    rows = []
    for prompt in prompts:
        ids = sp.encode(prompt)[: max_length - 1] + [1]
        rows.append(ids + [0] * (max_length - len(ids)))
    return torch.tensor(rows, dtype=torch.int64)


# ---------------------------------------------------------------------------------------------------------------- T5 encoder

class RmsNorm(nn.Module):
    """T5LayerNorm: x / √(mean(x²) + ε) · w (no mean, no bias)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class T5Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv: int):
        super().__init__()
        self.heads, self.kv = heads, kv
        self.q = nn.Linear(dim, heads * kv, bias=False)
        self.k = nn.Linear(dim, heads * kv, bias=False)
        self.v = nn.Linear(dim, heads * kv, bias=False)
        self.o = nn.Linear(heads * kv, dim, bias=False)

    def forward(self, x, bias):
        b, n, _ = x.shape
        split = lambda t: t.reshape(b, n, self.heads, self.kv).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(2, 3) + bias  # T5: no 1/√d scaling
        y = torch.softmax(scores, dim=-1) @ v
        return self.o(y.transpose(1, 2).reshape(b, n, self.heads * self.kv))


class T5Block(nn.Module):
    def __init__(self, dim: int, heads: int, kv: int, ff: int):
        super().__init__()
        self.norm1 = RmsNorm(dim)
        self.attn = T5Attention(dim, heads, kv)
        self.norm2 = RmsNorm(dim)
        self.wi_0 = nn.Linear(dim, ff, bias=False)
        self.wi_1 = nn.Linear(dim, ff, bias=False)
        self.wo = nn.Linear(ff, dim, bias=False)

    def forward(self, h, bias):
        h = h + self.attn(self.norm1(h), bias)
        x = self.norm2(h)
        gelu = F.gelu(self.wi_0(x), approximate="tanh")  # T5 v1.1's "gelu_new"
        return h + self.wo(gelu * self.wi_1(x))


class T5Encoder(nn.Module):
    """input_ids int64 [B, L] → last_hidden_state [B, L, T5_DIM]."""

    def __init__(self, vocab: int = T5_VOCAB, dim: int = T5_DIM, heads: int = T5_HEADS, kv: int = T5_KV, ff: int = T5_FF,
                 layers: int = T5_LAYERS, buckets: int = 32, max_distance: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.relative_bias = nn.Embedding(buckets, heads)
        self.blocks = nn.ModuleList(T5Block(dim, heads, kv, ff) for _ in range(layers))
        self.final_norm = RmsNorm(dim)
        self.buckets, self.max_distance = buckets, max_distance

    def bucket(self, relative):
        """Bidirectional buckets: half for each sign; within a half, |Δ| < n/4 exact, larger |Δ| log-spaced up to max_distance."""
        half = self.buckets // 2
        out = (relative > 0).long() * half
        distance = relative.abs()
        exact = half // 2
        large = exact + (torch.log(distance.float().clamp(min=1) / exact) / math.log(self.max_distance / exact)
                         * (half - exact)).long()
        large = torch.clamp(large, max=half - 1)
        return out + torch.where(distance < exact, distance, large)

    def forward(self, input_ids):
        n = input_ids.shape[1]
        h = self.embed(input_ids.long())
        positions = torch.arange(n)
        relative = positions[None, :] - positions[:, None]  # key position − query position
        bias = self.relative_bias(self.bucket(relative)).permute(2, 0, 1)[None]  # [1, heads, L, L]
        for block in self.blocks:
            h = block(h, bias)
        return self.final_norm(h)


def t5_encoder(seed: int) -> T5Encoder:
    torch.manual_seed(seed)
    model = T5Encoder().eval()
    with torch.no_grad():
        model.embed.weight.normal_(0.0, 1.0)
        model.relative_bias.weight.normal_(0.0, 1.0)
        for block in model.blocks:
            for layer in (block.attn.q, block.attn.k, block.attn.v, block.attn.o, block.wi_0, block.wi_1, block.wo):
                layer.weight.normal_(0.0, layer.in_features ** -0.5)
    return model


# ---------------------------------------------------------------------------------------------------------------- CLIP

def clip_encoders(seed: int, projection: bool):
    """(CLIP-L-like width 32, CLIP-G-like width 48), each returning (text_embeds | last, last | pooled, hidden_states…).
    With projection (SD3's CLIPTextModelWithProjection): a bias-free projection of the EOS state to the encoder's width."""
    torch.manual_seed(seed)
    encoders = []
    for dim in (CLIP_L, CLIP_G):
        base = TextEncoder(dim).eval()
        enc = SdxlTextEncoder(base, dim if projection else None).eval()
        if projection:
            with torch.no_grad():
                enc.projection.weight.normal_(0.0, dim ** -0.5)
        encoders.append(enc)
    return encoders


def export(model, args, path: Path, inputs, outputs, axes):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=17, do_constant_folding=True)


def export_clip(encoder, path: Path, projection: bool):
    ids = torch.randint(0, 1000, (1, 77), dtype=torch.int64)
    hidden = [f"hidden_states.{i}" for i in range(3)]
    first = ["text_embeds", "last_hidden_state"] if projection else ["last_hidden_state", "pooler_output"]
    axes = {n: {0: "batch_size"} for n in ["input_ids", *first, *hidden]}
    axes["input_ids"] = {0: "batch_size", 1: "sequence_length"}
    export(encoder, (ids,), path, ["input_ids"], [*first, *hidden], axes)


def export_t5(encoder, path: Path):
    ids = torch.randint(0, T5_VOCAB, (1, 16), dtype=torch.int64)
    export(encoder, (ids,), path, ["input_ids"], ["last_hidden_state"],
           {"input_ids": {0: "batch_size", 1: "sequence_length"}, "last_hidden_state": {0: "batch_size", 1: "sequence_length"}})


# ---------------------------------------------------------------------------------------------------------------- VAE

def vae(seed: int, scaling_factor: float, shift_factor: float):
    """diffusers' AutoencoderKL with 16 latent channels, 4 blocks (8× down/up), 16 channels wide, no quant convs (SD3/FLUX)."""
    diffusers = import_diffusers()
    torch.manual_seed(seed)
    model = diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
        sample_size=64, scaling_factor=scaling_factor, shift_factor=shift_factor, use_quant_conv=False,
        use_post_quant_conv=False, force_upcast=True).eval()
    return model


class VaeDecoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, latent_sample):
        return self.model.decode(latent_sample, return_dict=False)[0]


class VaeEncoder(nn.Module):
    """optimum ≥ 1.23's vae_encoder: latent_parameters = the posterior's (mean, logvar) stacked on channels [B, 32, h, w]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, sample):
        h = self.model.encoder(sample)
        if self.model.quant_conv is not None:
            h = self.model.quant_conv(h)
        return h


def export_vae(model, out: Path):
    export(VaeDecoder(model), (torch.randn(1, 16, 8, 12),), out / "vae_decoder" / "model.onnx", ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
            "sample": {0: "batch_size", 2: "height", 3: "width"}})
    export(VaeEncoder(model), (torch.randn(1, 3, 64, 96),), out / "vae_encoder" / "model.onnx", ["sample"], ["latent_parameters"],
           {"sample": {0: "batch_size", 2: "height", 3: "width"},
            "latent_parameters": {0: "batch_size", 2: "height_latent", 3: "width_latent"}})
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    config = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.31.0", **config}
    for part in ("vae_decoder", "vae_encoder"):
        (out / part / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=list) + "\n")


def write_json(path: Path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def copy_clip_tokenizer(out_dir: Path, pad_bang: bool):
    """tiny's CLIP tokenizer (ids 0..1013); pad_bang: pad with "!" (id 0), as SD3's CLIP-G tokenizer_2 does."""
    import shutil
    shutil.copytree(ROOT / "tiny" / "tokenizer", out_dir)
    if pad_bang:
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = out_dir / name
            config = json.loads(path.read_text())
            config["pad_token"] = "!"
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
