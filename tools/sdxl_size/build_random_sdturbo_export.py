#!/usr/bin/env python3
"""An SD-Turbo-architecture ONNX folder (stabilityai/sd-turbo: SD 2.1's UNet and OpenCLIP-H text encoder, 512 px, used
with 1 step and no guidance) with random, seeded weights at the real sizes, and a TAESD decoder beside it, for timing
a few-step picture end to end. The pictures are noise.

  unet/           diffusers v0.31.0 UNet2DConditionModel with sd-turbo's (= SD 2.1 base's) config (866 M parameters,
                  3.5 GB fp32, linear projections, 1024-wide cross attention), exported as build_random_sd15_export.py
                  exports SD 1.5's: every initializer in its own file beside model.onnx
  text_encoder/   OpenCLIP ViT-H/14's text transformer as SD 2.x ships it (23 layers: the 24th is dropped, SD 2 reads the
                  penultimate; width 1024, 16 heads, MLP 4096, GELU; 340 M parameters), outputs last_hidden_state and
                  pooler_output (and hidden_states.N, unused)
  vae_decoder/, vae_encoder/  SD's AutoencoderKL (scaling_factor 0.18215)
  taesd/vae_decoder/          a TAESD (build_random_taesd.py): the decoder FastSD CPU and previews use
  tokenizer/      the real CLIP vocab.json and merges.txt; pads with "!" as sd-turbo's tokenizer does
  scheduler/      sd-turbo's EulerDiscreteScheduler config (timestep_spacing "trailing")
The folder's name must contain "turbo" (the engine then defaults to 1 step and guidance 0, as for stabilityai/sd-turbo).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/sdxl_size/build_random_sdturbo_export.py \
        --out /tmp/sd-turbo-random [--clip ../shared/clip]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from real_size_export import folder_bytes  # noqa: E402
from sd15_size.build_random_sd15_export import MODEL_INDEX, SEED, copy_tokenizer, write_json  # noqa: E402

# stabilityai/sd-turbo unet/config.json (SD 2.1 base's architecture).
UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.24.0.dev0",
    "act_fn": "silu",
    "attention_head_dim": [5, 10, 20, 20],
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "use_linear_projection": True,
}

# stabilityai/sd-turbo text_encoder/config.json's sizes.
CLIP_H = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": 49408, "hidden_size": 1024,
          "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16, "max_position_embeddings": 77,
          "hidden_act": "gelu", "layer_norm_eps": 1e-05, "bos_token_id": 49406, "eos_token_id": 49407,
          "pad_token_id": 1, "projection_dim": 512}

# stabilityai/sd-turbo scheduler/scheduler_config.json.
SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "_diffusers_version": "0.24.0.dev0",
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
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def build_unet(out: Path) -> None:
    from sd15_size import build_random_sd15_export as sd15
    sd15.UNET_CONFIG = UNET_CONFIG  # same wrapper and export; SD 2.1's config and 1024-wide text
    import torch
    original = torch.randn

    def randn(*shape, **kwargs):  # the export's example encoder_hidden_states: SD 2.1's width
        if tuple(shape) == (2, 77, 768):
            shape = (2, 77, UNET_CONFIG["cross_attention_dim"])
        return original(*shape, **kwargs)

    torch.randn = randn
    sd15.build_unet(out)


def build_text_encoder(out: Path) -> None:
    from build_random_sdxl_export import export_text_encoder
    export_text_encoder(out, "text_encoder", CLIP_H, False, SEED + 10, big=False)


def build_vae(out: Path) -> None:
    from sd15_size.build_random_sd15_export import build_vae as vae
    vae(out)


def build_taesd(out: Path) -> None:
    subprocess.run([sys.executable, str(HERE.parents[1] / "sd15_size" / "build_random_taesd.py"), "--out", str(out)], check=True)


PARTS = {"text_encoder": build_text_encoder, "vae": build_vae, "taesd": build_taesd, "unet": build_unet}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder, its name containing 'turbo' (outside the repository)")
    parser.add_argument("--clip", type=Path, default=HERE.parents[3] / "shared" / "clip",
                        help="folder with the real CLIP vocab.json and merges.txt")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(PARTS), help="components already built")
    parser.add_argument("--part", choices=sorted(PARTS), help="build one component in this process (internal)")
    args = parser.parse_args()
    out = args.out.resolve()
    if "turbo" not in out.name.lower():
        sys.exit(f"--out {out}: the folder's name must contain 'turbo' (how the engine recognises an SD-Turbo export)")
    if args.part:
        PARTS[args.part](out)
        return
    out.mkdir(parents=True, exist_ok=True)
    copy_tokenizer(out, args.clip)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = out / "tokenizer" / name
        config = json.loads(path.read_text())
        config["pad_token"] = "!"  # SD 2.x's OpenCLIP tokenizer pads with "!" (id 0)
        path.write_text(json.dumps(config, indent=2) + "\n")
    write_json(out / "scheduler" / "scheduler_config.json", SCHEDULER)
    write_json(out / "model_index.json", {**MODEL_INDEX, "scheduler": ["diffusers", "EulerDiscreteScheduler"]})
    for part in [p for p in ("text_encoder", "vae", "taesd", "unet") if p not in args.skip]:
        started = time.monotonic()
        subprocess.run([sys.executable, str(HERE), "--out", str(out), "--part", part], check=True)
        print(f"{part}: {time.monotonic() - started:.0f} s", flush=True)
    print(f"{out}: {folder_bytes(out) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
