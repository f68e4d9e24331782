#!/usr/bin/env python3
"""Builds tiny ESRGAN-family upscalers (RRDBNet) and the reference data of the engine's upscaling and resampling tests.

models/test/esrgan/ gets
  tiny-esrgan-x4.onnx        RRDBNet x4 (nf 8, gc 4, one RRDB), float32 I/O, dynamic batch/height/width
  tiny-esrgan-x2.onnx        RRDBNet x2 (the same body behind a 2x pixel-unshuffle, as Real-ESRGAN's x2 models), float32
  tiny-esrgan-x4-fp16.onnx   the x4 net with float16 weights and I/O (arithmetic float32 inside, see build_test_models.py)
  tiny-esrgan-x2-fp16.onnx   the same for x2
models/test/esrgan-static/tiny-esrgan-x4-static64.onnx: the x4 net with its input fixed to [1,3,64,64], as some exports are
tests/LocalDiffusion.Tests/TestData/Upscaling/ gets
  input.png                  a seeded 20x14 RGB test picture
  esrgan_x4_reference.npy    the torch x4 net's float32 output for input.png ([1,3,56,80], no clamp)
  esrgan_x2_reference.npy    the torch x2 net's output ([1,3,28,40])
tests/LocalDiffusion.Tests/TestData/Imaging/pil_lanczos.json gets seeded small pictures and what PIL's
Image.resize(..., Image.LANCZOS) makes of them (RGB and L, enlarged, shrunk, one axis only, and the issue's 64x96 -> 64x64);
TestData/Upscaling/torch_latent_resize.json what torch's F.interpolate makes of seeded latents in the hires fix's latent modes.

The architecture follows the ESRGAN paper (Wang et al. 2018) as basicsr's RRDBNet lays it out: conv_first, RRDB blocks of
three residual dense blocks (five 3x3 convs, growth gc, LeakyReLU 0.2, residuals scaled by 0.2), conv_body, two nearest 2x
upsamplings each followed by a conv and LeakyReLU, conv_hr, LeakyReLU, conv_last; x2 models pixel-unshuffle the input by 2
first (so the body runs at half size). Input and output are RGB in [0, 1], NCHW.

Weights: torch's default init, scaled by 0.1 in the dense blocks (basicsr's default_init_weights scale) and by 1.6 in the
outer convs, with conv_last's bias set to 0.5, so that the random net's output follows the picture (std about 0.1) and stays
inside [0, 1] rather than clamping to black.

Run: /usr/bin/python3 tools/build_esrgan_test_models.py
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_test_models import OPSET, Io, save_checked, weights_to_fp16  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NF, GC, NB = 8, 4, 1


class DenseBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(NF + i * GC, GC if i < 4 else NF, 3, 1, 1) for i in range(5))

    def forward(self, x):
        features = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(features, 1))
            if i < 4:
                features.append(F.leaky_relu(y, 0.2))
        return y * 0.2 + x


class Rrdb(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.Sequential(DenseBlock(), DenseBlock(), DenseBlock())

    def forward(self, x):
        return self.blocks(x) * 0.2 + x


class RrdbNet(torch.nn.Module):
    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale
        unshuffle = 4 // scale  # x4: 1 (none), x2: 2
        self.conv_first = torch.nn.Conv2d(3 * unshuffle * unshuffle, NF, 3, 1, 1)
        self.body = torch.nn.Sequential(*[Rrdb() for _ in range(NB)])
        self.conv_body = torch.nn.Conv2d(NF, NF, 3, 1, 1)
        self.conv_up1 = torch.nn.Conv2d(NF, NF, 3, 1, 1)
        self.conv_up2 = torch.nn.Conv2d(NF, NF, 3, 1, 1)
        self.conv_hr = torch.nn.Conv2d(NF, NF, 3, 1, 1)
        self.conv_last = torch.nn.Conv2d(NF, 3, 3, 1, 1)

    def forward(self, x):
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


def build(scale: int) -> RrdbNet:
    torch.manual_seed(20 + scale)
    net = RrdbNet(scale).eval()
    with torch.no_grad():
        for block in net.body.modules():
            if isinstance(block, torch.nn.Conv2d):
                block.weight.mul_(0.1)
                block.bias.mul_(0.1)
        # The outer convs' gain raised so that the output varies with the picture (std about 0.1) and stays in [0, 1].
        for conv in (net.conv_first, net.conv_up1, net.conv_up2, net.conv_hr, net.conv_last):
            conv.weight.mul_(1.6)
        net.conv_last.bias.fill_(0.5)
    return net


def export(net: RrdbNet, path: Path, fp16: bool, static: int = 0) -> None:
    """Dynamic batch, height and width; with static, an input fixed to [1,3,static,static] (as some exports are)."""
    module = Io(net, torch.float16 if fp16 else torch.float32).eval()
    example = torch.rand(1, 3, static or 16, static or 16).to(torch.float16 if fp16 else torch.float32)
    buffer = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    dynamic = None if static else {"input": axes, "output": {0: "batch", 2: "height_out", 3: "width_out"}}
    with torch.no_grad():
        torch.onnx.export(module, (example,), buffer, input_names=["input"], output_names=["output"],
                          dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    if fp16:
        weights_to_fp16(model)
    save_checked(model, path)


def test_picture() -> np.ndarray:
    """20x14 RGB: a smooth gradient with a hard-edged square and seeded noise, so edges and flat parts both occur."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:14, 0:20]
    rgb = np.stack([x * 12, y * 17, 255 - x * 6 - y * 5], -1).astype(np.float64)
    rgb[4:10, 6:12] = [230, 40, 60]
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def lanczos_cases() -> list[dict]:
    rng = np.random.default_rng(11)
    cases = []

    def add(name, mode, src, size):
        image = Image.fromarray(src, mode)
        out = np.asarray(image.resize(size, Image.LANCZOS))
        cases.append({"name": name, "mode": mode, "width": src.shape[1], "height": src.shape[0],
                      "pixels": src.reshape(-1).tolist(), "to_width": size[0], "to_height": size[1],
                      "expected": out.reshape(-1).tolist()})

    small = rng.integers(0, 256, (7, 11, 3), dtype=np.uint8)
    add("enlarge", "RGB", small, (23, 17))
    add("shrink", "RGB", small, (5, 4))
    add("width only", "RGB", small, (16, 7))
    add("height only", "RGB", small, (11, 3))
    add("mixed", "RGB", small, (4, 15))
    add("alpha enlarge", "L", rng.integers(0, 256, (6, 9), dtype=np.uint8), (36, 24))
    # The case: a 64x96 (WxH) init image made 64x64; a smooth picture with an edge, as photos are.
    y, x = np.mgrid[0:96, 0:64]
    tall = np.stack([x * 4, y * 2, (x + y) % 256], -1).astype(np.uint8)
    tall[30:60, 20:40] = [250, 250, 10]
    add("init image 64x96 to 64x64", "RGB", tall, (64, 64))
    return cases


def latent_cases() -> dict:
    """torch's F.interpolate (align_corners False) of seeded [1,4,5,7] latents to 10x14 and 8x11, in the modes A1111's
    "Latent" upscalers use (shared.latent_upscale_modes): bilinear and bicubic, each with and without antialias, nearest,
    nearest-exact."""
    torch.manual_seed(3)
    x = torch.randn(1, 4, 5, 7)
    cases = []
    for size in ((10, 14), (8, 11)):
        for name, kwargs in (("bilinear", dict(mode="bilinear", align_corners=False)),
                             ("bilinear antialiased", dict(mode="bilinear", align_corners=False, antialias=True)),
                             ("bicubic", dict(mode="bicubic", align_corners=False)),
                             ("bicubic antialiased", dict(mode="bicubic", align_corners=False, antialias=True)),
                             ("nearest", dict(mode="nearest")),
                             ("nearest-exact", dict(mode="nearest-exact"))):
            y = F.interpolate(x, size=size, **kwargs)
            cases.append({"mode": name, "to_height": size[0], "to_width": size[1], "expected": y.reshape(-1).tolist()})
    return {"source": "torch " + torch.__version__ + " F.interpolate, tools/build_esrgan_test_models.py",
            "shape": list(x.shape), "latents": x.reshape(-1).tolist(), "cases": cases}


def main() -> int:
    out = ROOT / "models" / "test" / "esrgan"
    data = ROOT / "tests" / "LocalDiffusion.Tests" / "TestData"
    (data / "Upscaling").mkdir(parents=True, exist_ok=True)
    (data / "Imaging").mkdir(parents=True, exist_ok=True)
    picture = test_picture()
    Image.fromarray(picture, "RGB").save(data / "Upscaling" / "input.png")
    x = torch.from_numpy(picture.astype(np.float32) / 255).permute(2, 0, 1)[None]
    for scale in (4, 2):
        net = build(scale)
        export(net, out / f"tiny-esrgan-x{scale}.onnx", fp16=False)
        export(net, out / f"tiny-esrgan-x{scale}-fp16.onnx", fp16=True)
        if scale == 4:
            export(net, ROOT / "models" / "test" / "esrgan-static" / "tiny-esrgan-x4-static64.onnx", fp16=False, static=64)
        with torch.no_grad():
            y = net(x).numpy().astype(np.float32)
        np.save(data / "Upscaling" / f"esrgan_x{scale}_reference.npy", y)
        print(f"x{scale}: output {y.shape}, mean {y.mean():.3f}, std {y.std():.3f}, "
              f"in [0,1]: {((y >= 0) & (y <= 1)).mean():.1%}")
    with open(data / "Imaging" / "pil_lanczos.json", "w") as f:
        json.dump({"source": "PIL " + Image.__version__ + " Image.resize(size, Image.LANCZOS), "
                   "tools/build_esrgan_test_models.py", "cases": lanczos_cases()}, f, separators=(",", ":"))
        f.write("\n")
    with open(data / "Upscaling" / "torch_latent_resize.json", "w") as f:
        json.dump(latent_cases(), f, separators=(",", ":"))
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
