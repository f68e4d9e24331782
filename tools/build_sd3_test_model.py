#!/usr/bin/env python3
"""Build models/test/tiny-sd3: a tiny, random-weight Stable Diffusion 3 export in optimum's ONNX layout.

What an engine sees of SD3 (stabilityai/stable-diffusion-3-medium-diffusers), at toy sizes, seeded (flow_test_nets.py):
  * tokenizer/ + text_encoder/: CLIP-L-like (width 32), CLIPTextModelWithProjection's outputs as optimum exports them:
    text_embeds [B,32], last_hidden_state, hidden_states.0..2 (SD3 uses hidden_states[-2] and text_embeds);
  * tokenizer_2/ + text_encoder_2/: CLIP-G-like (width 48, text_embeds [B,48]); the tokenizer pads with "!" (id 0);
  * tokenizer_3/ + text_encoder_3/: a tiny T5 v1.1 encoder (width 96) and its SentencePiece tokenizer: input_ids int64
    [B,L] → last_hidden_state [B,L,96];
  * transformer/: diffusers v0.31.0's SD3Transformer2DModel (patch 2, 16 channels, 2 joint blocks, 2 heads of 8,
    joint_attention_dim 96 = T5's width, pooled_projection_dim 80 = 32 + 48, pos_embed_max_size 16 → latents up to 32×32),
    inputs hidden_states [B,16,h,w], encoder_hidden_states [B,S,96], pooled_projections [B,80], timestep float32 [B]
    (σ·1000, as the pipeline passes it) → out_hidden_states [B,16,h,w] (optimum's names);
  * vae_decoder/, vae_encoder/: diffusers' AutoencoderKL, 16 latent channels, SD3's scaling_factor 1.5305 and shift_factor
    0.0609, latent_sample → sample and sample → latent_parameters (mean, logvar) [B,32,h,w];
  * scheduler/: SD3 medium's FlowMatchEulerDiscreteScheduler config (shift 3.0); model_index.json: StableDiffusion3Pipeline.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_sd3_test_model.py   (after build_test_models.py)
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flow_test_nets as nets  # noqa: E402

SEED = 20270
OUT = nets.ROOT / "tiny-sd3"
SCHEDULER = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.29.0.dev0", "num_train_timesteps": 1000,
             "shift": 3.0}
TRANSFORMER = dict(sample_size=16, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                   joint_attention_dim=nets.T5_DIM, caption_projection_dim=16, pooled_projection_dim=nets.CLIP_L + nets.CLIP_G,
                   out_channels=16, pos_embed_max_size=16)


def build():
    """(text_encoder, text_encoder_2, text_encoder_3, transformer, vae), rebuilt identically on every call."""
    diffusers = nets.import_diffusers()
    torch.set_num_threads(1)
    clip_l, clip_g = nets.clip_encoders(SEED, projection=True)
    t5 = nets.t5_encoder(SEED + 1)
    torch.manual_seed(SEED + 2)
    transformer = diffusers.SD3Transformer2DModel(**TRANSFORMER).eval()
    with torch.no_grad():  # diffusers zero-initialises the adaLN modulations and the output: give them random weights
        for name, p in transformer.named_parameters():
            if p.dim() >= 2 and float(p.abs().max()) == 0.0:
                p.normal_(0.0, 0.5 * p.shape[1] ** -0.5)
    nets.affine_layer_norms(transformer)
    return clip_l, clip_g, t5, transformer, nets.vae(SEED + 3, 1.5305, 0.0609)


class TransformerExport(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, hidden_states, encoder_hidden_states, pooled_projections, timestep):
        return self.model(hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states,
                          pooled_projections=pooled_projections, timestep=timestep, return_dict=False)[0]


def export_transformer(transformer, path: Path):
    """Exports the transformer in optimum's layout (also used by build_flow_lora_test_files.py for its merged copy)."""
    args = (torch.randn(1, 16, 8, 12), torch.randn(1, 93, nets.T5_DIM), torch.randn(1, TRANSFORMER["pooled_projection_dim"]),
            torch.tensor([500.0]))
    nets.export(TransformerExport(transformer), args, path,
                ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"], ["out_hidden_states"],
                {"hidden_states": {0: "batch_size", 2: "height", 3: "width"},
                 "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"}, "pooled_projections": {0: "batch_size"},
                 "timestep": {0: "step"}, "out_hidden_states": {0: "batch_size", 2: "height", 3: "width"}})


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    clip_l, clip_g, t5, transformer, vae = build()
    nets.copy_clip_tokenizer(OUT / "tokenizer", pad_bang=False)
    nets.copy_clip_tokenizer(OUT / "tokenizer_2", pad_bang=True)
    with tempfile.TemporaryDirectory() as work:
        nets.train_t5_tokenizer(OUT / "tokenizer_3", Path(work))
    nets.export_clip(clip_l, OUT / "text_encoder" / "model.onnx", projection=True)
    nets.export_clip(clip_g, OUT / "text_encoder_2" / "model.onnx", projection=True)
    nets.export_t5(t5, OUT / "text_encoder_3" / "model.onnx")
    export_transformer(transformer, OUT / "transformer" / "model.onnx")
    config = {"_class_name": "SD3Transformer2DModel", "_diffusers_version": "0.31.0",
              **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(transformer.config).items() if not k.startswith("_")}}
    nets.write_json(OUT / "transformer" / "config.json", config)
    nets.export_vae(vae, OUT)
    nets.write_json(OUT / "scheduler" / "scheduler_config.json", SCHEDULER)
    clip, t5_class = ["transformers", "CLIPTextModelWithProjection"], ["transformers", "T5EncoderModel"]
    nets.write_json(OUT / "model_index.json", {
        "_class_name": "StableDiffusion3Pipeline", "_diffusers_version": "0.31.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": clip, "text_encoder_2": clip,
        "text_encoder_3": t5_class, "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "tokenizer_3": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "SD3Transformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"]})
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"tiny-sd3: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
