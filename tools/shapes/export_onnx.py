#!/usr/bin/env python3
"""Export the trained shapes model to models/shapes/ in the diffusers/optimum ONNX layout.

    export_onnx.py --ckpt DIR [--out models/shapes] [--scheduler DPMSolverMultistepScheduler]

Uses torch.onnx.export (TorchScript exporter, opset 17), dynamic batch and spatial axes, fp32 inputs and outputs.
Weights are stored as float16 initializers followed by a Cast to float32 inside the graph (half the file size,
fp32 arithmetic), so the engine sees an ordinary fp32 model.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample import REPO, Model  # noqa: E402
from models import VaeConfig, VaeEncoder, load_half  # noqa: E402

OPSET = 17


def export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, do_constant_folding=True)
    store_weights_fp16(path)


def store_weights_fp16(path: Path) -> None:
    """Replace each float32 initializer by a float16 one plus a Cast node that restores the original name."""
    model = onnx.load(str(path))
    graph = model.graph
    casts, keep = [], []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if init.data_type != onnx.TensorProto.FLOAT or array.size < 16 or np.abs(array).max() >= 65000:
            keep.append(init)  # tiny tensors and the attention mask's -1e9 stay float32
            continue
        half = numpy_helper.from_array(array.astype(np.float16), init.name + "_fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "_cast"))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--out", default=str(REPO / "models" / "shapes"))
    parser.add_argument("--scheduler", default="DPMSolverMultistepScheduler")
    args = parser.parse_args()
    ckpt, out = Path(args.ckpt), Path(args.out)
    model = Model(ckpt, out / "tokenizer", "cpu")
    cfg = model.cfg
    encoder = VaeEncoder(VaeConfig(**{**cfg["vae"], "channels": tuple(cfg["vae"]["channels"])}))
    load_half(encoder, torch.load(ckpt / "vae.pt")["encoder"])
    encoder.eval()
    h, width, d = model.latent_size, cfg["image_size"], cfg["text"]["width"]

    export(model.text, (torch.zeros(1, 77, dtype=torch.int32),), out / "text_encoder" / "model.onnx",
           ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}})
    export(model.unet, (torch.randn(2, 4, h, h), torch.tensor([999.0, 999.0]), torch.randn(2, 77, d)),
           out / "unet" / "model.onnx", ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch", 2: "height", 3: "width"}})
    export(model.decoder, (torch.randn(1, 4, h, h),), out / "vae_decoder" / "model.onnx", ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}})
    export(encoder, (torch.randn(1, 3, width, width),), out / "vae_encoder" / "model.onnx", ["sample"], ["latent_parameters"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "latent_parameters": {0: "batch", 2: "height", 3: "width"}})

    write_json(out / "model_index.json", {
        "_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.30.0",
        "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", args.scheduler], "text_encoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "OnnxRuntimeModel"],
        "vae_decoder": ["diffusers", "OnnxRuntimeModel"], "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
    })
    scheduler = {
        "_class_name": args.scheduler, "_diffusers_version": "0.30.0", "num_train_timesteps": cfg["train_steps"],
        "beta_start": cfg["beta_start"], "beta_end": cfg["beta_end"], "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon", "timestep_spacing": "linspace", "steps_offset": 0, "trained_betas": None,
        # Keys other classes read when a user switches scheduler (as SD 1.5's config has them): without them
        # DDIM would clip x0 to [-1, 1] (its default) and PNDM would run Runge-Kutta warm-up steps.
        "clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True,
    }
    if args.scheduler == "DPMSolverMultistepScheduler":
        scheduler.update({"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint",
                          "lower_order_final": True, "final_sigmas_type": "zero", "use_karras_sigmas": False,
                          "thresholding": False})
    else:
        scheduler.update({"interpolation_type": "linear", "use_karras_sigmas": False})
    write_json(out / "scheduler" / "scheduler_config.json", scheduler)
    write_json(out / "text_encoder" / "config.json", {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": cfg["text"]["vocab_size"],
        "hidden_size": d, "intermediate_size": 4 * d, "num_hidden_layers": cfg["text"]["layers"],
        "num_attention_heads": cfg["text"]["heads"], "max_position_embeddings": 77, "hidden_act": "quick_gelu",
        "bos_token_id": cfg["text"]["vocab_size"] - 2, "eos_token_id": cfg["text"]["vocab_size"] - 1,
        "pad_token_id": cfg["text"]["vocab_size"] - 1,
    })
    write_json(out / "unet" / "config.json", {
        "_class_name": "UNet2DConditionModel", "sample_size": h, "in_channels": 4, "out_channels": 4,
        "block_out_channels": list(cfg["unet"]["channels"]), "cross_attention_dim": d,
        "attention_head_dim": cfg["unet"]["head_dim"], "layers_per_block": 1,
    })
    vae_cfg = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
               "block_out_channels": list(cfg["vae"]["channels"]), "sample_size": width,
               "scaling_factor": round(model.scaling_factor, 5)}
    write_json(out / "vae_decoder" / "config.json", vae_cfg)
    write_json(out / "vae_encoder" / "config.json", vae_cfg)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported to {out}: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
