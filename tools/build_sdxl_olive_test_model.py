#!/usr/bin/env python3
"""Build models/test/tiny-sdxl-olive: tiny-sdxl's weights in Microsoft Olive's SDXL ONNX layout and dtypes.

What Olive's SDXL example (examples/stable_diffusion_xl, formerly examples/directml/stable_diffusion_xl, in
github.com/microsoft/Olive up to its removal in 2025) writes, reproduced on tiny-sdxl's networks
(tools/build_sdxl_test_model.nets(), so the same weights):
  * the folder is optimum's ORTStableDiffusionXLPipeline.save_pretrained output with the optimised models copied
    over: model_index.json (`ORTStableDiffusionXLPipeline`, the PyTorch pipeline's config with every ONNX
    component as ["diffusers", "OnnxRuntimeModel"] and "vae" dropped), scheduler/, tokenizer/, tokenizer_2/, and
    text_encoder/, text_encoder_2/, unet/, vae_decoder/, vae_encoder/ holding model.onnx. No component has a
    config.json: optimum copies one only from beside the source model, and Olive's outputs have none, so nothing
    states the VAE's scaling factor or the UNet's sample size;
  * the --use_fp16_fixed_vae form (every model converted to float16 with keep_io_types false): float16 weights,
    inputs and outputs. (Olive's DirectML default keeps float32 I/O around float16 internals: tiny-sdxl's interface.)
    As in tools/build_test_models.py the arithmetic inside stays float32 (Cast nodes after float16 weights),
    because ONNX Runtime's x86 CPU provider lacks float16 Conv;
  * text_encoder/ takes int32 input_ids (Olive's conversion input), text_encoder_2/ int64; their outputs are
    last_hidden_state, pooler_output, hidden_states.N and text_embeds, last_hidden_state, hidden_states.N, with
    Olive's dynamic axes (batch_size, sequence_length);
  * unet/ takes sample, timestep float16 [unet_time_batch], encoder_hidden_states, text_embeds and time_ids with
    Olive's dim names, width dims of text_embeds and time_ids symbolic; its weights are external data in
    model.onnx.data (Olive's default name, size threshold 1024);
  * vae_decoder/ latent_sample → sample; vae_encoder/ sample → latent_sample [B,4,h,w] (Olive exports
    encode(...).latent_dist.sample(), drawing with RandomNormalLike inside the graph; here the mean stands in for
    it, as in tiny-external, so the tests stay deterministic);
  * ONNX opset 14, Olive's conversion opset for SDXL.
Graph fusions of Olive's OrtTransformersOptimization (MultiHeadAttention, GroupNorm, … contrib ops, several of which
only CUDA/DirectML implement) are not reproduced.

    /usr/bin/python3 tools/build_sdxl_olive_test_model.py   (after tools/build_sdxl_test_model.py)
"""
import io
import json
import shutil
import sys
from pathlib import Path

import onnx
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_sdxl_test_model import DIM1, DIM2, PROJ, ROOT, nets  # noqa: E402
from build_test_models import Io, fix_static_output_dims, save_checked, weights_to_fp16  # noqa: E402
from test_model_nets import SEQ_LEN  # noqa: E402

OPSET = 14
OUT = ROOT / "tiny-sdxl-olive"


class MeanOnly(nn.Module):
    """The VAE encoder's posterior mean [B,4,h,w]: a deterministic stand-in for Olive's in-graph sample."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, sample):
        return self.encoder(sample)[:, :4]


def export_fp16(net, args, path: Path, inputs, outputs, axes, external: bool = False) -> None:
    """torch.onnx.export with float16 I/O, then float16 weights; external data as Olive saves it."""
    module = Io(net, torch.float16).eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    with torch.no_grad():
        traced = module(*args)
    # torch 1.13 leaves dims after a Cast symbolic; Olive's shape inference declares them (hidden widths).
    fix_static_output_dims(model, traced if isinstance(traced, tuple) else (traced,), axes)
    weights_to_fp16(model)
    save_checked(model, path, path.name + ".data" if external else None)  # Olive names it model.onnx.data


def main() -> int:
    tiny_sdxl = ROOT / "tiny-sdxl"
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    te1, te2, unet, decoder, encoder = nets()
    for part in ("tokenizer", "tokenizer_2", "scheduler"):
        shutil.copytree(tiny_sdxl / part, OUT / part)

    hidden = [f"hidden_states.{i}" for i in range(3)]
    text_axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
                 "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
                 **{n: {0: "batch_size", 1: "sequence_length"} for n in hidden}}
    ids = torch.zeros((1, SEQ_LEN), dtype=torch.int32)  # Olive's conversion input: zeros, int32 for text_encoder
    export_fp16(te1, (ids,), OUT / "text_encoder" / "model.onnx", ["input_ids"],
                ["last_hidden_state", "pooler_output", *hidden], {**text_axes, "pooler_output": {0: "batch_size"}})
    export_fp16(te2, (ids.long(),), OUT / "text_encoder_2" / "model.onnx", ["input_ids"],  # int64 for text_encoder_2
                ["text_embeds", "last_hidden_state", *hidden], {**text_axes, "text_embeds": {0: "batch_size"}})

    half = torch.float16
    unet_args = (torch.rand(2, 4, 8, 12).to(half), torch.rand(1).to(half), torch.rand(2, SEQ_LEN, DIM1 + DIM2).to(half),
                 torch.rand(2, PROJ).to(half), torch.rand(2, 6).to(half))
    export_fp16(unet, unet_args, OUT / "unet" / "model.onnx",
                ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"], ["out_sample"],
                {"sample": {0: "unet_sample_batch", 1: "unet_sample_channels", 2: "unet_sample_height", 3: "unet_sample_width"},
                 "timestep": {0: "unet_time_batch"},
                 "encoder_hidden_states": {0: "unet_hidden_batch", 1: "unet_hidden_sequence"},
                 "text_embeds": {0: "unet_text_embeds_batch", 1: "unet_text_embeds_size"},
                 "time_ids": {0: "unet_time_ids_batch", 1: "unet_time_ids_size"},
                 # not in Olive's io_config; symbolic as the sample's after shape inference
                 "out_sample": {0: "unet_sample_batch", 1: "unet_sample_channels", 2: "unet_sample_height", 3: "unet_sample_width"}},
                external=True)

    latent = {0: "batch_size", 1: "num_channels_latent", 2: "height_latent", 3: "width_latent"}
    image = {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"}
    export_fp16(decoder, (torch.rand(1, 4, 8, 12).to(half),), OUT / "vae_decoder" / "model.onnx",
                ["latent_sample"], ["sample"], {"latent_sample": latent, "sample": image})
    export_fp16(MeanOnly(encoder).eval(), (torch.rand(1, 3, 64, 96).to(half),), OUT / "vae_encoder" / "model.onnx",
                ["sample"], ["latent_sample"], {"sample": image, "latent_sample": latent})

    onnx_model = ["diffusers", "OnnxRuntimeModel"]
    index = {"_class_name": "ORTStableDiffusionXLPipeline", "_diffusers_version": "0.31.0",
             "_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0",
             "feature_extractor": [None, None], "force_zeros_for_empty_prompt": True, "image_encoder": [None, None],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": onnx_model,
             "text_encoder_2": onnx_model, "tokenizer": ["transformers", "CLIPTokenizer"],
             "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": onnx_model, "vae_decoder": onnx_model,
             "vae_encoder": onnx_model}
    (OUT / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"tiny-sdxl-olive: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
