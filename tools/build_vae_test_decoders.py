#!/usr/bin/env python3
"""Build models/test/vae/: stand-alone VAE decoders for the tests of PipelineOptions.VaeDecoderPath and the fp32 fallback.

  * sdxl-overflow/model.onnx: tiny-sdxl's VAE decoder (tools/build_sdxl_test_model.nets()) with conv_in's weights and
    bias multiplied by K, so its output reaches about 1e5 on ordinary latents, where SDXL's real VAE has its large
    activations. The GroupNorm after conv_in divides the factor out again, so in float32 the picture is tiny-sdxl's
    (but for GroupNorm's eps, now relatively smaller). This file is the float16 form (float16 I/O and weights, as
    Olive's or optimum's --fp16 exports): conv_in's output is stored as float16, as float16 arithmetic holds it, where
    it overflows to infinity and the GroupNorm turns it into NaN: an fp16 VAE that fails on ordinary latents. (The
    rest stays float32 inside, as in tools/build_test_models.py: ONNX Runtime's x86 CPU provider lacks float16 Conv.)
  * sdxl-overflow/model.fp32.onnx: the same network in float32, the variant an export may ship beside its fp16
    decoder (diffusers' variant naming, model.onnx -> model.fp32.onnx); config.json: SDXL's scaling_factor 0.13025.
  * 16-channel/model.onnx: a decoder taking latent_sample [batch,16,h,w] (the latent width of SD 3's and Flux's VAEs),
    to be refused as another model's VAE.
  * gpu-only/model.onnx: a few-node decoder with a fused com.microsoft GroupNorm (NHWC), as Olive's and ONNX Runtime's
    transformer optimiser write for CUDA/DirectML, which ONNX Runtime's CPU provider does not implement.

    /usr/bin/python3 tools/build_vae_test_decoders.py   (after tools/build_sdxl_test_model.py; under a second)
"""
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_sdxl_test_model import ROOT, nets  # noqa: E402
from build_test_models import Io, save_checked, weights_to_fp16  # noqa: E402
from test_model_nets import VaeDecoder  # noqa: E402

OPSET = 17
OUT = ROOT / "vae"
FP16_MAX = 65504.0


class Decoder(nn.Module):
    """test_model_nets.VaeDecoder's forward, optionally rounding conv_in's output to float16 as fp16 arithmetic stores it."""

    def __init__(self, net: VaeDecoder, float16_activations: bool):
        super().__init__()
        self.net, self.float16_activations = net, float16_activations

    def forward(self, latent_sample):
        n = self.net
        h = n.conv_in(latent_sample)
        if self.float16_activations:
            h = h.half().float()
        h = F.silu(n.norm_in(h))
        for conv, norm in zip(n.ups, n.norms):
            h = F.silu(norm(conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))))
        return n.conv_out(h)


def export(module, path: Path, channels: int, fp16: bool) -> None:
    io_type = torch.float16 if fp16 else torch.float32
    wrapped = Io(module, io_type).eval()
    buffer = io.BytesIO()
    axes = {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "image_height", 3: "image_width"}}
    with torch.no_grad():
        torch.onnx.export(wrapped, (torch.randn(1, channels, 8, 12).to(io_type),), buffer, input_names=["latent_sample"],
                          output_names=["sample"], dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    if fp16:
        weights_to_fp16(model)
    save_checked(model, path)


def gpu_only_decoder(path: Path) -> None:
    """latent_sample -> NHWC -> com.microsoft GroupNorm -> NCHW -> 1x1 Conv to 3 channels -> nearest x8 -> sample."""
    weights = [numpy_helper.from_array(np.ones(4, np.float32), "gamma"), numpy_helper.from_array(np.zeros(4, np.float32), "beta"),
               numpy_helper.from_array(np.full((3, 4, 1, 1), 0.25, np.float32), "to_rgb"),
               numpy_helper.from_array(np.array([1, 1, 8, 8], np.float32), "scales")]
    nodes = [helper.make_node("Transpose", ["latent_sample"], ["nhwc"], perm=[0, 2, 3, 1]),
             helper.make_node("GroupNorm", ["nhwc", "gamma", "beta"], ["normed"], domain="com.microsoft", name="GroupNorm_0",
                              activation=1, epsilon=1e-5, groups=2, channels_last=1),
             helper.make_node("Transpose", ["normed"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "to_rgb"], ["rgb"]),
             helper.make_node("Resize", ["rgb", "", "scales"], ["sample"], mode="nearest")]
    graph = helper.make_graph(nodes, "gpu_only_vae_decoder",
                              [helper.make_tensor_value_info("latent_sample", TensorProto.FLOAT, ["batch", 4, "height", "width"])],
                              [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", 3, "image_height", "image_width"])],
                              initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="LocalDiffusion tools")
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    decoder = nets()[3]
    with torch.no_grad():
        # As large as float16 weights allow: the largest weight becomes 30000.
        k = 30000.0 / float(decoder.conv_in.weight.abs().max())
        decoder.conv_in.weight.mul_(k)
        decoder.conv_in.bias.mul_(k)
        ordinary = torch.randn(1, 4, 8, 12, generator=torch.Generator().manual_seed(1)) / 0.13025
        peak = float(decoder.conv_in(ordinary).abs().max())
        assert peak > FP16_MAX, f"conv_in peaks at {peak}, inside float16's range: the fp16 decoder would not overflow"
        assert torch.isnan(Decoder(decoder, True)(ordinary)).any()
        assert torch.isfinite(Decoder(decoder, False)(ordinary)).all()
    folder = OUT / "sdxl-overflow"
    export(Decoder(decoder, True).eval(), folder / "model.onnx", 4, fp16=True)
    export(Decoder(decoder, False).eval(), folder / "model.fp32.onnx", 4, fp16=False)
    config = {"_class_name": "AutoencoderKL", "force_upcast": True, "latent_channels": 4, "scaling_factor": 0.13025}
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    torch.manual_seed(16)
    wide = VaeDecoder().eval()
    wide.conv_in = nn.Conv2d(16, wide.conv_in.out_channels, 3, padding=1)
    export(Decoder(wide, False).eval(), OUT / "16-channel" / "model.onnx", 16, fp16=False)
    gpu_only_decoder(OUT / "gpu-only" / "model.onnx")
    print(f"vae: conv_in x{k:.0f}, peak {peak:.0f} on ordinary latents; "
          f"{sum(f.stat().st_size for f in OUT.rglob('*') if f.is_file()) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
