#!/usr/bin/python3
"""Build models/test/<variant>/: tiny random-weight Stable Diffusion folders in the diffusers/optimum ONNX layout.

Every variant carries the same weights (one seed) behind a different interface, so an engine should produce
the same image from `tiny`, `tiny-optimum`, `tiny-external` and (at 64×64) `tiny-static`, and nearly the same
from `tiny-fp16`. Needs Debian's python3-torch (1.13) and python3-onnx; see tools/README.md.

    /usr/bin/python3 tools/build_test_models.py [--out models/test]
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clip_bpe  # noqa: E402
from test_model_nets import SEQ_LEN, TEXT_DIM, TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate  # noqa: E402

OPSET = 17
SEED = 20240
MERGES = 500


@dataclass(frozen=True)
class Variant:
    name: str
    purpose: str
    optimum: bool = False           # optimum layout and dim names (else the diffusers conversion script's)
    ids_dtype: torch.dtype = torch.int32
    timestep: str = "int64[B]"      # int64[B] | int64[1] | float32[] | float16[B]
    fp16: bool = False
    static: bool = False            # batch 1, latents 8×8
    external_unet: bool = False
    encoder_mean_only: bool = False  # vae_encoder returns latent_sample [B,4,h,w] instead of latent_parameters


VARIANTS = [
    Variant("tiny", "diffusers conversion script form: int32 ids, int64 [B] timestep, fp32, dynamic dims"),
    Variant("tiny-optimum", "optimum-cli form: int64 ids, float32 scalar timestep, vae config.json", optimum=True,
            ids_dtype=torch.int64, timestep="float32[]"),
    Variant("tiny-fp16", "float16 I/O and weights (Olive / keep_io_types=false form)", timestep="float16[B]", fp16=True),
    Variant("tiny-static", "batch fixed to 1 (CFG halves run as two calls), latents fixed to 8×8 (64×64 px)",
            timestep="int64[1]", static=True),
    Variant("tiny-external", "unet weights in external data (unet/model.onnx_data); vae_encoder returns "
            "latent_sample [B,4,h,w] (diffusers script form)", external_unet=True, encoder_mean_only=True),
]

SUBJECTS = ["a cat", "a dog", "an old man", "a young woman", "a red fox", "a castle", "a lighthouse", "a robot",
            "an astronaut", "a sailing ship", "a mountain village", "a bowl of fruit", "a vintage car", "a dragon",
            "a forest cabin", "a city street", "a teapot", "a hummingbird", "a waterfall", "a knight in armor",
            "a steam locomotive", "a jellyfish", "an owl", "a samurai", "a cathedral", "a bicycle", "a greenhouse",
            "a wizard", "a tiger", "a submarine", "a windmill", "a violinist", "a penguin", "a treehouse"]
SETTINGS = ["at sunset", "in the rain", "on the moon", "under a starry sky", "in a misty forest", "by the sea",
            "in a snowy field", "at night", "in a busy market", "on a wooden table", "in the desert",
            "in a neon cyberpunk alley", "beside a frozen lake", "among autumn leaves", "inside a crystal cave",
            "above the clouds", "in a flooded library", "on a rooftop garden"]
MOODS = ["golden", "gloomy", "whimsical", "serene", "ancient", "futuristic", "colorful", "majestic", "tiny",
         "glowing", "weathered", "elegant", "mysterious", "cozy", "dramatic", "minimalist", "ornate", "rusty"]
STYLES = ["oil painting", "watercolor", "highly detailed", "digital art", "photograph, 35mm", "studio lighting",
          "concept art", "trending on artstation", "8k, sharp focus", "pencil sketch", "cinematic lighting",
          "soft pastel colors", "isometric render", "ukiyo-e woodblock print", "bokeh, shallow depth of field",
          "volumetric fog", "charcoal drawing", "stained glass", "low poly", "impressionist brushstrokes",
          "hyperrealistic", "vaporwave palette", "baroque chiaroscuro", "analog film grain"]


def corpus() -> list[str]:
    """Prompt-like captions: every subject × setting, with a mood and two styles chosen by fixed rotations."""
    captions = []
    for i, (subject, setting) in enumerate(itertools.product(SUBJECTS, SETTINGS)):
        captions.append(f"{subject} {setting}, {MOODS[i % len(MOODS)]}, {STYLES[i % len(STYLES)]}, "
                        f"{STYLES[(5 * i + 7) % len(STYLES)]}")
    return captions


# ---- ONNX export -------------------------------------------------------------------------------------------

class Io(torch.nn.Module):
    """Casts the inputs to float32 for the shared float32 net and its outputs to the variant's float type."""

    def __init__(self, net: torch.nn.Module, out_dtype: torch.dtype):
        super().__init__()
        self.net, self.out_dtype = net, out_dtype

    def forward(self, *inputs):
        inputs = [x.float() if x.is_floating_point() else x for x in inputs]
        out = self.net(*inputs)
        return tuple(o.to(self.out_dtype) for o in out) if isinstance(out, tuple) else out.to(self.out_dtype)


def weights_to_fp16(model: onnx.ModelProto) -> None:
    """Store every float32 initializer as float16, cast back to float32 where the graph reads it.

    The arithmetic stays float32 so the model runs on ONNX Runtime's CPU provider, which lacks float16 kernels
    for Conv and friends on x86; the file, the weights' precision and the I/O are float16.
    """
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], name=name + "_to_fp32", to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def fix_static_output_dims(model: onnx.ModelProto, traced, dynamic_axes) -> None:
    """Declare every output dim not named dynamic with its traced size (the exporter leaves some symbolic)."""
    for output, value in zip(model.graph.output, traced):
        named = (dynamic_axes or {}).get(output.name, {})
        for i, dim in enumerate(output.type.tensor_type.shape.dim):
            if i not in named:
                dim.Clear()
                dim.dim_value = value.shape[i]


def export(net, args, path: Path, inputs, outputs, dynamic_axes, *, fp16: bool, external: bool = False) -> None:
    buffer = io.BytesIO()
    module = Io(net, torch.float16 if fp16 else torch.float32).eval()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes or None, opset_version=OPSET, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    with torch.no_grad():
        traced = module(*args)
    fix_static_output_dims(model, traced if isinstance(traced, tuple) else (traced,), dynamic_axes)
    if fp16:
        weights_to_fp16(model)
    save_checked(model, path, path.name + "_data" if external else None)


def save_checked(model: onnx.ModelProto, path: Path, external_data: str | None = None) -> None:
    """Drops the exporter's doc strings (they hold source paths), checks the model and writes it, its weights in the
    file named external_data beside it when one is given."""
    for node in model.graph.node:
        node.doc_string = ""
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_data:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external_data, size_threshold=1024, convert_attribute=False)
    else:
        onnx.save_model(model, str(path))


def dims(names: dict[int, str], static: bool) -> dict[int, str]:
    return {} if static else names


def concrete_channels(axes: dict[int, str]) -> dict[int, str]:
    """An output's dynamic axes without the channel dim: outputs declare their channel count."""
    return {k: name for k, name in axes.items() if k != 1}


def export_variant(v: Variant, nets, out: Path, vocab: dict[str, int]) -> None:
    text_encoder, unet, decoder, encoder_full, encoder_mean = nets
    batch = 1 if v.static else 2
    lat_h, lat_w = (8, 8) if v.static else (8, 12)
    float_type = torch.float16 if v.fp16 else torch.float32
    b = "batch_size" if v.optimum else "batch"
    seq = "sequence_length" if v.optimum else "sequence"
    ch, h, w = ("num_channels", "height", "width") if v.optimum else ("channels", "height", "width")

    eos = vocab[clip_bpe.EOS]
    ids = torch.full((batch, SEQ_LEN), eos, dtype=v.ids_dtype)
    ids[:, 0] = vocab[clip_bpe.BOS]
    ids[:, 1:4] = torch.tensor([600, 700, 800], dtype=v.ids_dtype)
    export(text_encoder, (ids,), out / "text_encoder" / "model.onnx", ["input_ids"],
           ["last_hidden_state", "pooler_output"],
           dims({"input_ids": {0: b, 1: seq}, "last_hidden_state": {0: b, 1: seq}, "pooler_output": {0: b}}, v.static),
           fp16=v.fp16)

    sample = torch.randn(batch, 4, lat_h, lat_w).to(float_type)
    states = torch.randn(batch, SEQ_LEN, TEXT_DIM).to(float_type)
    timestep = {
        "int64[B]": torch.full((batch,), 500, dtype=torch.int64),
        "int64[1]": torch.tensor([500], dtype=torch.int64),
        "float32[]": torch.tensor(500.0, dtype=torch.float32),
        "float16[B]": torch.full((batch,), 500.0, dtype=torch.float16),
    }[v.timestep]
    spatial = {0: b, 1: ch, 2: h, 3: w}
    # Outputs keep their channel count concrete (ONNX Runtime infers and reports it anyway); inputs declare it
    # symbolic as the exporters do.
    unet_axes = {"sample": spatial, "encoder_hidden_states": {0: b, 1: seq}, "out_sample": concrete_channels(spatial)}
    if timestep.dim() == 1 and not v.static:
        unet_axes["timestep"] = {0: b}
    export(unet, (sample, timestep, states), out / "unet" / "model.onnx",
           ["sample", "timestep", "encoder_hidden_states"], ["out_sample"], dims(unet_axes, v.static),
           fp16=v.fp16, external=v.external_unet)

    # Latent and image dims get distinct names: one symbolic name on two tensors claims they are equal.
    if v.optimum:
        latent_dims, image_dims = {0: b, 1: "num_channels_latent", 2: "height_latent", 3: "width_latent"}, spatial
    else:
        latent_dims, image_dims = spatial, {0: b, 1: "image_channels", 2: "image_height", 3: "image_width"}
    export(decoder, (torch.randn(batch, 4, lat_h, lat_w).to(float_type),), out / "vae_decoder" / "model.onnx",
           ["latent_sample"], ["sample"],
           dims({"latent_sample": latent_dims, "sample": concrete_channels(image_dims)}, v.static), fp16=v.fp16)

    encoder_out = "latent_sample" if v.encoder_mean_only else "latent_parameters"
    image = (torch.rand(batch, 3, 8 * lat_h, 8 * lat_w) * 2 - 1).to(float_type)
    export(encoder_mean if v.encoder_mean_only else encoder_full, (image,), out / "vae_encoder" / "model.onnx",
           ["sample"], [encoder_out], dims({"sample": image_dims, encoder_out: concrete_channels(latent_dims)}, v.static),
           fp16=v.fp16)


# ---- configs ------------------------------------------------------------------------------------------------

SCHEDULER = {  # SD1.5's scheduler_config.json (GUIDE §3)
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
}


def model_index(v: Variant) -> dict:
    common = {
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
    }
    if v.optimum:
        return {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0", **common,
                "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"]}
    onnx_model = ["diffusers", "OnnxRuntimeModel"]
    return {"_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.30.0", **common,
            "text_encoder": onnx_model, "unet": onnx_model, "vae_decoder": onnx_model, "vae_encoder": onnx_model}


def optimum_configs(v: Variant) -> dict[str, dict]:
    """The config.json files optimum writes beside each model (the PyTorch component's config)."""
    vae = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.30.0", "in_channels": 3, "out_channels": 3,
           "latent_channels": 4, "sample_size": 64 if v.static else 512, "scaling_factor": 0.18215}
    return {
        "text_encoder": {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": 49408,
                         "hidden_size": TEXT_DIM, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "intermediate_size": 2 * TEXT_DIM, "max_position_embeddings": SEQ_LEN,
                         "hidden_act": "quick_gelu"},
        "unet": {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.30.0", "in_channels": 4,
                 "out_channels": 4, "cross_attention_dim": TEXT_DIM, "sample_size": 8 if v.static else 64},
        "vae_decoder": vae,
        "vae_encoder": vae,
    }


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ---- README -------------------------------------------------------------------------------------------------

ELEM = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.INT32: "int32",
        TensorProto.INT64: "int64"}


def describe(value_info) -> str:
    t = value_info.type.tensor_type
    shape = ",".join(d.dim_param or str(d.dim_value) for d in t.shape.dim)
    return f"`{value_info.name}` {ELEM[t.elem_type]} [{shape}]"


def readme(out: Path, vocab: dict[str, int]) -> str:
    lines = ["# Tiny test models", "",
             "Random-weight Stable Diffusion folders with the real component interfaces, for the engine's tests.",
             "Built by `tools/build_test_models.py` (see tools/README.md); do not edit by hand. All variants share",
             "the same weights, so the same prompt, seed and size give the same image from `tiny`, `tiny-optimum`,",
             "`tiny-external` and (at 64×64) `tiny-static`, and nearly the same from `tiny-fp16`.",
             f"Text hidden size is {TEXT_DIM} (not 768); the tokenizer is a {len(vocab) - 514}-merge CLIP-format BPE "
             f"(ids 0..{len(vocab) - 1},",
             f"BOS {vocab[clip_bpe.BOS]}, EOS {vocab[clip_bpe.EOS]}), but the text encoder accepts every CLIP id "
             "below 49408.", "",
             "| variant | exercises | component | inputs | outputs |", "|---|---|---|---|---|"]
    for v in VARIANTS:
        for i, component in enumerate(("text_encoder", "unet", "vae_decoder", "vae_encoder")):
            graph = onnx.load(str(out / v.name / component / "model.onnx"), load_external_data=False).graph
            lines.append(f"| {v.name if i == 0 else ''} | {v.purpose if i == 0 else ''} | {component} | "
                         f"{'<br>'.join(describe(x) for x in graph.input)} | "
                         f"{'<br>'.join(describe(x) for x in graph.output)} |")
    lines += ["", "`refused/` holds UNet stand-ins with the inputs of other variants, built by `tools/build_refused_unets.py`:",
              "the SDXL one is refused in an SD 1.x folder (no text_encoder_2); the LCM one (timestep_cond) loads as an LCM-distilled UNet; the 9-channel inpainting",
              "one loads and is refused for anything but inpainting.",
              "Built after this script, from the same networks: `tiny-inpainting/` (a 9-channel inpainting UNet,",
              "`tools/build_inpainting_test_model.py`), `tiny-sd2/` (OpenCLIP `!` padding, SD 2.1's v-prediction DDIM config,",
              "`tools/build_sd2_test_model.py`) and `tiny-lcm/` (an LCM-distilled UNet with `timestep_cond`,",
              "`tools/build_lcm_test_model.py`).",
              "`tiny-sdxl/` (`tools/build_sdxl_test_model.py`, its own seed): an SDXL base export in optimum's layout — `text_encoder/`",
              "(width 32) and `text_encoder_2/` (width 48, `text_embeds` [B,16]) with `hidden_states.0..2` outputs, `tokenizer_2/`",
              "padding with `!`, a UNet taking `encoder_hidden_states` [B,77,80], `text_embeds` [B,16] and `time_ids` [B,6], VAE",
              "configs with scaling_factor 0.13025 and SDXL base's EulerDiscrete scheduler config (about 1 MiB).",
              "`tiny-sdxl-refiner/` (`tools/build_sdxl_refiner_test_model.py`, its own seed): an SDXL refiner export — `text_encoder_2/`",
              "(width 48, `text_embeds` [B,16]) and `tokenizer_2/` alone, a UNet taking `encoder_hidden_states` [B,77,48], `text_embeds`",
              "[B,16] and `time_ids` [B,5] (original size, crop, aesthetic score), `requires_aesthetics_score` true (about 0.8 MiB).",
              "`tiny-sdxl-olive/` (`tools/build_sdxl_olive_test_model.py`): tiny-sdxl's weights in Microsoft Olive's SDXL layout and",
              "dtypes (its `--use_fp16_fixed_vae` form): float16 weights, inputs and outputs, int32 `input_ids` for `text_encoder/` and",
              "int64 for `text_encoder_2/`, `timestep` float16 [unet_time_batch], Olive's dim names (widths of `text_embeds` and",
              "`time_ids` symbolic), UNet weights in `model.onnx.data`, a `vae_encoder` returning `latent_sample`, opset 14, and no",
              "component config.json (so no stated VAE scaling factor or sample size) (about 0.65 MiB).",
              "`vae/` (`tools/build_vae_test_decoders.py`): stand-alone VAE decoders. `sdxl-overflow/` is tiny-sdxl's decoder with",
              "conv_in scaled up so that its float16 form (`model.onnx`) overflows to NaN on ordinary latents while its float32 form",
              "(`model.fp32.onnx`, the variant beside it) does not; `16-channel/` takes 16 latent channels (SD 3's and Flux's width);",
              "`gpu-only/` has a fused com.microsoft GroupNorm (GPU-optimised exports' operator, which the CPU provider lacks).",
              "`tiny-fused/`: `tiny` with its UNet's attention rewritten into com.microsoft.MultiHeadAttention by",
              "`tools/fuse_attention.py --model models/test/tiny --out models/test/tiny-fused` (run after this script).",
              "`tiny-int8/`: `tiny` with its UNet's MatMul weights quantised to int8 (com.microsoft.DynamicQuantizeMatMul) by",
              "`tools/quantize_unet.py --model models/test/tiny --out models/test/tiny-int8 --min-elements 256`."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "models" / "test"))
    out = Path(parser.parse_args().out)

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # the same float rounding on every machine
    text_encoder, unet, decoder = TextEncoder().eval(), UNet().eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(text_encoder, unet, decoder, encoder)
    encoder_mean = VaeEncoder(mean_only=True).eval()
    encoder_mean.load_state_dict(encoder.state_dict())
    nets = (text_encoder, unet, decoder, encoder, encoder_mean)

    captions = corpus()
    for v in VARIANTS:
        folder = out / v.name
        if folder.exists():
            shutil.rmtree(folder)
        clip_bpe.build(captions, MERGES, folder / "tokenizer")
        vocab = json.loads((folder / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
        export_variant(v, nets, folder, vocab)
        write_json(folder / "model_index.json", model_index(v))
        write_json(folder / "scheduler" / "scheduler_config.json", SCHEDULER)
        if v.optimum:
            for component, config in optimum_configs(v).items():
                write_json(folder / component / "config.json", config)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        print(f"{v.name}: {size / 1024:.0f} KiB")
    (out / "README.md").write_text(readme(out, vocab), encoding="utf-8")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"total {total / 1024:.0f} KiB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
