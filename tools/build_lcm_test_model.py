#!/usr/bin/env python3
"""Build models/test/tiny-lcm: models/test/tiny with an LCM-distilled UNet (a timestep_cond [B,256] input).

An LCM-distilled UNet (diffusers' UNet2DConditionModel with time_cond_proj_dim = 256, e.g. SimianLuo/LCM_Dreamshaper_v7)
adds cond_proj(timestep_cond) to its time embedding, where timestep_cond is the guidance scale w = g − 1 embedded as
sin/cos features of w·1000 (LatentConsistencyModelPipeline.get_guidance_scale_embedding). LcmUNet does the same on the
tiny UNet (rebuilt from tools/build_test_models.py's seed; a seeded bias-free Linear(256, 64) is the cond_proj).
The text encoder, VAE and tokenizer are tiny's; model_index.json names LatentConsistencyModelPipeline and the scheduler
config is LCM_Dreamshaper_v7's LCMScheduler.

    /usr/bin/python3 tools/build_lcm_test_model.py   (after tools/build_test_models.py)
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_model_nets import SEQ_LEN, TEXT_DIM, TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate  # noqa: E402

SEED = 20240  # tools/build_test_models.py
LCM_SEED = 1234
COND_DIM = 256
ROOT = Path(__file__).resolve().parents[1] / "models" / "test"

# SimianLuo/LCM_Dreamshaper_v7 scheduler/scheduler_config.json.
SCHEDULER = {
    "_class_name": "LCMScheduler",
    "_diffusers_version": "0.22.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "dynamic_thresholding_ratio": 0.995,
    "num_train_timesteps": 1000,
    "original_inference_steps": 50,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "thresholding": False,
    "timestep_scaling": 10.0,
    "timestep_spacing": "leading",
    "trained_betas": None,
}


class LcmUNet(nn.Module):
    """The tiny UNet with an LCM guidance embedding: temb = time_embedding(t) + cond_proj(timestep_cond)."""

    def __init__(self, base: UNet, seed: int):
        super().__init__()
        self.base = base
        generator = torch.Generator().manual_seed(seed)
        self.cond_proj = nn.Linear(COND_DIM, base.time_out.out_features, bias=False)
        with torch.no_grad():
            self.cond_proj.weight.copy_(torch.randn(self.cond_proj.weight.shape, generator=generator) * 0.1)

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond):
        t = timestep.float().reshape(-1)
        return self.base.denoise(sample, t, self.base.time_embedding(t) + self.cond_proj(timestep_cond), encoder_hidden_states)


def nets():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    text_encoder, unet, decoder = TextEncoder().eval(), UNet().eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(text_encoder, unet, decoder, encoder)
    return text_encoder, LcmUNet(unet, LCM_SEED).eval()


def main() -> int:
    out = ROOT / "tiny-lcm"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "tiny", out, ignore=shutil.ignore_patterns("unet"))
    index = json.loads((out / "model_index.json").read_text())
    index["_class_name"] = "LatentConsistencyModelPipeline"
    index["scheduler"] = ["diffusers", "LCMScheduler"]
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=2, sort_keys=True) + "\n")
    _, unet = nets()
    (out / "unet").mkdir()
    args = (torch.randn(1, 4, 8, 12), torch.full((1,), 500, dtype=torch.int64), torch.randn(1, SEQ_LEN, TEXT_DIM),
            torch.randn(1, COND_DIM))
    torch.onnx.export(unet, args, str(out / "unet" / "model.onnx"),
                      input_names=["sample", "timestep", "encoder_hidden_states", "timestep_cond"], output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                                    "encoder_hidden_states": {0: "batch", 1: "sequence"}, "timestep_cond": {0: "batch"},
                                    "out_sample": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=17, do_constant_folding=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tiny-lcm: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
