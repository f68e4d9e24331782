#!/usr/bin/env python3
"""Build models/test/tiny-sd2: models/test/tiny dressed as a Stable Diffusion 2.x (768-v) export.

What distinguishes an SD 2.x folder for an engine, reproduced on the tiny networks (the ONNX files are tiny's, copied,
so tools/pipeline_reference/sd2_tiny.py can rebuild the same torch weights):
  * the tokenizer pads with OpenCLIP's "!" (id 0 in CLIP's vocabulary, and in the tiny vocabulary) instead of
    <|endoftext|>: pad_token "!" in tokenizer_config.json and special_tokens_map.json, as stabilityai/stable-diffusion-2-1;
  * the scheduler predicts v: stable-diffusion-2-1's scheduler_config.json (DDIMScheduler, prediction_type v_prediction).
A 1024-wide OpenCLIP text encoder and the UNet's linear projections are weight-shape matters the engine never sees.

    /usr/bin/python3 tools/build_sd2_test_model.py   (after tools/build_test_models.py)
"""
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "models" / "test"

# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json.
SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


def main() -> int:
    out = ROOT / "tiny-sd2"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "tiny", out)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = out / "tokenizer" / name
        config = json.loads(path.read_text())
        config["pad_token"] = "!"
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=2, sort_keys=True) + "\n")
    vocab = json.loads((out / "tokenizer" / "vocab.json").read_text())
    assert vocab["!"] == 0, "the tiny vocabulary should give '!' id 0, as CLIP's does"
    print(f"tiny-sd2 written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
