#!/usr/bin/env python3
"""Build models/test/tiny-sdxl: a tiny, random-weight Stable Diffusion XL base export in optimum's ONNX layout.

What an engine sees of SDXL base, on toy sizes (tools/test_model_nets.py's networks, seeded):
  * two CLIP-like text encoders. text_encoder/ (width 32) outputs last_hidden_state, pooler_output and
    hidden_states.0..2 (embeddings, then each block's output), as optimum exports CLIPTextModel with
    output_hidden_states; text_encoder_2/ (width 48) outputs text_embeds [B,16] (a bias-free projection of the
    EOS-pooled state, CLIPTextModelWithProjection), last_hidden_state and hidden_states.0..2;
  * tokenizer/ (tiny's, <|endoftext|> padding) and tokenizer_2/ (pad "!" = id 0, as SDXL's OpenCLIP tokenizer);
  * unet/ takes sample, timestep, encoder_hidden_states [B,77,80] (hidden_states[-2] of both encoders,
    concatenated), text_embeds [B,16] and time_ids [B,6]; like SDXL's add_embedding it embeds each time id
    sinusoidally, concatenates the pooled embedding and adds a projection of that to the time embedding;
  * vae_decoder/ and vae_encoder/ are tiny's networks with config.json scaling_factor 0.13025 (SDXL's VAE);
  * scheduler/ is stabilityai/stable-diffusion-xl-base-1.0's EulerDiscreteScheduler config.

    /usr/bin/python3 tools/build_sdxl_test_model.py   (after tools/build_test_models.py)
"""
import json
import math
import shutil
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_model_nets import SEQ_LEN, TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate  # noqa: E402

SEED = 20250
DIM1, DIM2, PROJ = 32, 48, 16
TIME_ID_DIM = 8  # per time id; SDXL's addition_time_embed_dim is 256
ROOT = Path(__file__).resolve().parents[1] / "models" / "test"

# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json.
SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


class SdxlTextEncoder(nn.Module):
    """TextEncoder that also returns every block's input/output (hidden_states.N) and, with a projection, text_embeds."""

    def __init__(self, base: TextEncoder, projection: int | None):
        super().__init__()
        self.base = base
        dim = base.final_norm.normalized_shape[0]
        self.projection = nn.Linear(dim, projection, bias=False) if projection else None

    def forward(self, input_ids):
        b = self.base
        ids = input_ids.long()
        length = ids.shape[1]
        h = b.low(ids % 256) + b.high(torch.div(ids, 256, rounding_mode="floor")) + b.pos[:length]
        mask = b.causal[:length, :length]
        states = [h]
        for block in b.blocks:
            h = block(h, mask)
            states.append(h)
        last = b.final_norm(h)
        eos = input_ids.to(torch.int32).argmax(dim=-1).long()
        pooled = torch.gather(last, 1, eos[:, None, None].expand(-1, 1, last.shape[2])).squeeze(1)
        first = self.projection(pooled) if self.projection is not None else pooled
        return (first, last, *states) if self.projection is not None else (last, pooled, *states)


class SdxlUNet(nn.Module):
    """The tiny UNet (text width DIM1 + DIM2) with SDXL's added conditioning: temb += add_embedding(time_ids, text_embeds)."""

    def __init__(self, base: UNet, seed: int, time_ids: int = 6):
        super().__init__()
        self.base = base
        generator = torch.Generator().manual_seed(seed)
        time_dim = base.time_out.out_features
        self.add_in = nn.Linear(PROJ + time_ids * TIME_ID_DIM, time_dim)
        self.add_out = nn.Linear(time_dim, time_dim)
        with torch.no_grad():
            for layer in (self.add_in, self.add_out):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.2)
                layer.bias.zero_()

    def add_embedding(self, text_embeds, time_ids):
        half = TIME_ID_DIM // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = time_ids.float().reshape(-1)[:, None] * freqs[None, :]
        ids = torch.cat([torch.cos(args), torch.sin(args)], dim=1).reshape(time_ids.shape[0], -1)
        return self.add_out(F.silu(self.add_in(torch.cat([text_embeds, ids], dim=1))))

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        t = timestep.float().reshape(-1)
        return self.base.denoise(sample, t, self.base.time_embedding(t) + self.add_embedding(text_embeds, time_ids), encoder_hidden_states)


def nets():
    """(text_encoder, text_encoder_2, unet, vae_decoder, vae_encoder), rebuilt identically on every call."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    te1, te2 = TextEncoder(DIM1).eval(), TextEncoder(DIM2).eval()
    unet, decoder = UNet(text_dim=DIM1 + DIM2).eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()

    class Both(nn.Module):  # calibrate() feeds the UNet one encoder's states: give it both, concatenated
        def forward(self, ids):
            return torch.cat([te1(ids)[0], te2(ids)[0]], dim=-1), None

    calibrate(Both(), unet, decoder, encoder)
    proj_seed = torch.Generator().manual_seed(SEED + 1)
    text_encoder, text_encoder_2 = SdxlTextEncoder(te1, None).eval(), SdxlTextEncoder(te2, PROJ).eval()
    with torch.no_grad():
        text_encoder_2.projection.weight.copy_(torch.randn(PROJ, DIM2, generator=proj_seed) * DIM2 ** -0.5)
    return text_encoder, text_encoder_2, SdxlUNet(unet, SEED + 2).eval(), decoder, encoder


def export(model, args, path, inputs, outputs, axes):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=17, do_constant_folding=True)


def export_unet_and_vae(unet, decoder, encoder, out, text_dim, time_ids):
    """The UNet (with SDXL's text_embeds and time_ids inputs) and both VAE halves, with the axes SDXL exports declare."""
    args = (torch.randn(1, 4, 8, 12), torch.full((1,), 500, dtype=torch.int64), torch.randn(1, SEQ_LEN, text_dim),
            torch.randn(1, PROJ), torch.tensor([time_ids]))
    export(unet, args, out / "unet" / "model.onnx",
           ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"], ["out_sample"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}, "time_ids": {0: "batch"},
            "out_sample": {0: "batch", 2: "height", 3: "width"}})
    export(decoder, (torch.randn(1, 4, 8, 12),), out / "vae_decoder" / "model.onnx", ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}})
    export(encoder, (torch.randn(1, 3, 64, 96),), out / "vae_encoder" / "model.onnx", ["sample"], ["latent_parameters"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "latent_parameters": {0: "batch", 2: "height", 3: "width"}})


def main() -> int:
    out = ROOT / "tiny-sdxl"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    te1, te2, unet, decoder, encoder = nets()
    shutil.copytree(ROOT / "tiny" / "tokenizer", out / "tokenizer")
    shutil.copytree(ROOT / "tiny" / "tokenizer", out / "tokenizer_2")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = out / "tokenizer_2" / name
        config = json.loads(path.read_text())
        config["pad_token"] = "!"
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    assert json.loads((out / "tokenizer_2" / "vocab.json").read_text())["!"] == 0
    ids = torch.randint(0, 1000, (1, SEQ_LEN), dtype=torch.int32)
    hidden = [f"hidden_states.{i}" for i in range(3)]
    axes = {"input_ids": {0: "batch"}, **{n: {0: "batch"} for n in hidden}}
    export(te1, (ids,), out / "text_encoder" / "model.onnx", ["input_ids"], ["last_hidden_state", "pooler_output", *hidden],
           {**axes, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}})
    export(te2, (ids,), out / "text_encoder_2" / "model.onnx", ["input_ids"], ["text_embeds", "last_hidden_state", *hidden],
           {**axes, "last_hidden_state": {0: "batch"}, "text_embeds": {0: "batch"}})
    export_unet_and_vae(unet, decoder, encoder, out, DIM1 + DIM2, [64.0, 96.0, 0.0, 0.0, 64.0, 96.0])
    vae_config = {"_class_name": "AutoencoderKL", "force_upcast": True, "latent_channels": 4, "scaling_factor": 0.13025}
    for part in ("vae_decoder", "vae_encoder"):
        (out / part / "config.json").write_text(json.dumps(vae_config, indent=2, sort_keys=True) + "\n")
    (out / "scheduler").mkdir()
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=2, sort_keys=True) + "\n")
    onnx = ["diffusers", "OnnxRuntimeModel"]
    index = {"_class_name": "ORTStableDiffusionXLPipeline", "_diffusers_version": "0.31.0",
             "force_zeros_for_empty_prompt": True, "requires_aesthetics_score": False,
             "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": onnx, "text_encoder_2": onnx,
             "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
             "unet": onnx, "vae_decoder": onnx, "vae_encoder": onnx}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tiny-sdxl: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
