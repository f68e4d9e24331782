#!/usr/bin/env python3
"""Build models/test/tiny-flux-schnell and models/test/tiny-flux-dev: tiny, random-weight FLUX.1 exports in optimum's ONNX layout.

What an engine sees of FLUX.1 (black-forest-labs/FLUX.1-schnell / FLUX.1-dev), at toy sizes, seeded (flow_test_nets.py):
  * tokenizer/ + text_encoder/: CLIP-L-like (width 32), CLIPTextModel's outputs as optimum exports them: last_hidden_state,
    pooler_output [B,32] (FLUX uses the pooled output), hidden_states.0..2;
  * tokenizer_2/ + text_encoder_2/: the tiny T5 v1.1 encoder (width 96) and its SentencePiece tokenizer (as tiny-sd3's);
  * transformer/: diffusers v0.31.0's FluxTransformer2DModel (1 double-stream and 1 single-stream block, 2 heads of 16,
    RoPE axes (4, 6, 6), joint_attention_dim 96, pooled_projection_dim 32; dev adds guidance_embeds), optimum's names:
    hidden_states [B, h/2·w/2, 64] (latents packed 2×2), encoder_hidden_states [B,S,96], pooled_projections [B,32],
    timestep float32 [B] (σ: the pipeline passes t/1000 and the model multiplies by 1000 inside), img_ids float32 [h/2·w/2, 3]
    and txt_ids float32 [S, 3] (2-D, as diffusers ≥ 0.31 takes them), dev: guidance float32 [B] → out_hidden_states [B, h/2·w/2, 64];
  * vae_decoder/, vae_encoder/: diffusers' AutoencoderKL, 16 latent channels, FLUX's scaling_factor 0.3611, shift_factor 0.1159;
  * scheduler/: FLUX.1-dev's FlowMatchEulerDiscreteScheduler config (use_dynamic_shifting true, shift 3.0) or schnell's
    (use_dynamic_shifting false, shift 1.0); model_index.json: FluxPipeline.
Both variants share the text encoders and VAE; each has its own transformer (dev's has the guidance embedder).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_flux_test_model.py   (after build_test_models.py)
"""
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flow_test_nets as nets  # noqa: E402

SEED = 20280
DEV = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.30.0.dev0", "base_image_seq_len": 256,
       "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0,
       "use_dynamic_shifting": True}
SCHNELL = dict(DEV, shift=1.0, use_dynamic_shifting=False)


def transformer_config(guidance: bool):
    return dict(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                joint_attention_dim=nets.T5_DIM, pooled_projection_dim=nets.CLIP_L, guidance_embeds=guidance,
                axes_dims_rope=(4, 6, 6))


def build(variant: str):
    """(text_encoder, text_encoder_2, transformer, vae) of "schnell" or "dev", rebuilt identically on every call."""
    diffusers = nets.import_diffusers()
    torch.set_num_threads(1)
    clip_l, _ = nets.clip_encoders(SEED, projection=False)
    t5 = nets.t5_encoder(SEED + 1)
    torch.manual_seed(SEED + (2 if variant == "schnell" else 4))
    transformer = diffusers.FluxTransformer2DModel(**transformer_config(variant == "dev")).eval()
    with torch.no_grad():  # zero-initialised layers (adaLN, outputs) get random weights so every input matters
        for name, p in transformer.named_parameters():
            if p.dim() >= 2 and float(p.abs().max()) == 0.0:
                p.normal_(0.0, 0.5 * p.shape[1] ** -0.5)
    nets.affine_layer_norms(transformer)
    return clip_l, t5, transformer, nets.vae(SEED + 3, 0.3611, 0.1159)


class TransformerExport(nn.Module):
    def __init__(self, model, guidance: bool):
        super().__init__()
        self.model, self.guidance = model, guidance

    def forward(self, hidden_states, encoder_hidden_states, pooled_projections, timestep, img_ids, txt_ids, guidance=None):
        return self.model(hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states,
                          pooled_projections=pooled_projections, timestep=timestep, img_ids=img_ids, txt_ids=txt_ids,
                          guidance=guidance, return_dict=False)[0]


def export_transformer(transformer, dev: bool, path: Path):
    """Exports the transformer in optimum's layout (also used by build_flow_lora_test_files.py for its merged copy)."""
    h, w, seq = 4, 6, 13
    ids = torch.zeros(h, w, 3)
    ids[..., 1] += torch.arange(h)[:, None]
    ids[..., 2] += torch.arange(w)[None, :]
    args = (torch.randn(1, h * w, 64), torch.randn(1, seq, nets.T5_DIM), torch.randn(1, nets.CLIP_L), torch.tensor([0.5]),
            ids.reshape(h * w, 3), torch.zeros(seq, 3))
    names = ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids"]
    axes = {"hidden_states": {0: "batch_size", 1: "packed_height_width"},
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"}, "pooled_projections": {0: "batch_size"},
            "timestep": {0: "batch_size"}, "img_ids": {0: "packed_height_width"}, "txt_ids": {0: "sequence_length"},
            "out_hidden_states": {0: "batch_size", 1: "packed_height_width"}}
    if dev:
        args, names, axes = args + (torch.tensor([3.5]),), names + ["guidance"], {**axes, "guidance": {0: "batch_size"}}
    nets.export(TransformerExport(transformer, dev), args, path, names, ["out_hidden_states"], axes)


def write(variant: str, work: Path):
    out = nets.ROOT / f"tiny-flux-{variant}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    clip_l, t5, transformer, vae = build(variant)
    nets.copy_clip_tokenizer(out / "tokenizer", pad_bang=False)
    nets.train_t5_tokenizer(out / "tokenizer_2", work)
    nets.export_clip(clip_l, out / "text_encoder" / "model.onnx", projection=False)
    nets.export_t5(t5, out / "text_encoder_2" / "model.onnx")
    dev = variant == "dev"
    export_transformer(transformer, dev, out / "transformer" / "model.onnx")
    config = {"_class_name": "FluxTransformer2DModel", "_diffusers_version": "0.31.0",
              **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(transformer.config).items() if not k.startswith("_")}}
    nets.write_json(out / "transformer" / "config.json", config)
    nets.export_vae(vae, out)
    nets.write_json(out / "scheduler" / "scheduler_config.json", DEV if dev else SCHNELL)
    nets.write_json(out / "model_index.json", {
        "_class_name": "FluxPipeline", "_diffusers_version": "0.31.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"]})
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tiny-flux-{variant}: {size / 1024:.0f} KiB")


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        for variant in ("schnell", "dev"):
            write(variant, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
