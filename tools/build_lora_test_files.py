#!/usr/bin/env python3
"""Writes LoRA test files for the tiny models and their torch-merged reference.

models/test/lora/ gets:
  kohya_fp16.safetensors   kohya/A1111 keys (lora_unet_<path>.lora_down.weight / .lora_up.weight / .alpha, lora_te_…),
                           float16, alpha != rank on some layers, one LoCon 3x3 conv layer, kohya's ss_* metadata
  kohya_bf16.safetensors   the same in bfloat16
  peft_fp32.safetensors    diffusers/PEFT keys (unet.<path>.lora_A.weight / lora_B.weight, text_encoder.…), float32,
                           no alphas (diffusers' save_lora_weights writes none): lora_B carries alpha/rank
  unet_only_fp32.safetensors  PEFT keys, UNet layers only
  sdxl_te2.safetensors     a kohya lora_te2_ layer (for refusal tests on an SD 1.x model)
The values are rounded to bfloat16 first, so all the files hold exactly the same numbers and give one merge.
models/test/tiny-lora-merged/ is models/test/tiny with its UNet and text encoder rebuilt from the same torch nets
with W += 1.0 * (alpha/rank) * up @ down merged in torch (conv: the down kernel flattened), exported the same way.
TestData/Adapters/sd15_kohya_to_peft.json: kohya key names for SD 1.5's UNet and CLIP-L modules (the attention,
feed-forward and projection layers kohya's LoRA trains, plus LoCon's resnet/sampler convs) and what diffusers v0.31.0's
_convert_non_diffusers_lora_to_diffusers + convert_unet_state_dict_to_peft / convert_state_dict_to_peft name them.

Run: PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_lora_test_files.py
"""
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_test_models as btm  # noqa: E402
from test_model_nets import TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "test" / "lora"
MERGED = ROOT / "models" / "test" / "tiny-lora-merged"
TESTDATA = ROOT / "tests" / "LocalDiffusion.Tests" / "TestData" / "Adapters"

# (component, torch module path, rank, alpha or None, conv kernel or None)
LAYERS = [
    ("unet", "cross.q", 4, 2.0, None),
    ("unet", "cross.k", 2, None, None),
    ("unet", "cross.out", 4, 8.0, None),
    ("unet", "time_in", 2, 1.0, None),          # a Gemm (transB) weight
    ("unet", "res_high.conv1", 4, 2.0, (3, 3)),  # LoCon: down [r, in, 3, 3], up [out, r, 1, 1]
    ("text_encoder", "blocks.0.attn.q", 4, 2.0, None),
    ("text_encoder", "blocks.1.fc1", 2, None, None),
]


def nets():
    torch.manual_seed(btm.SEED)
    torch.set_num_threads(1)
    text_encoder, unet, decoder = TextEncoder().eval(), UNet().eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(text_encoder, unet, decoder, encoder)
    encoder_mean = VaeEncoder(mean_only=True).eval()
    encoder_mean.load_state_dict(encoder.state_dict())
    return text_encoder, unet, decoder, encoder, encoder_mean


def bf16_exact(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).to(torch.float32)


def make_pairs(modules: dict[str, torch.nn.Module]):
    gen = torch.Generator().manual_seed(4242)
    pairs = []
    for component, path, rank, alpha, kernel in LAYERS:
        weight = modules[component].get_submodule(path).weight
        out_f, in_f = weight.shape[0], weight.shape[1]
        down_shape = (rank, in_f, *kernel) if kernel else (rank, in_f)
        up_shape = (out_f, rank, 1, 1) if kernel else (out_f, rank)
        down = bf16_exact(torch.randn(down_shape, generator=gen) * 0.3)
        up = bf16_exact(torch.randn(up_shape, generator=gen) * 0.3)
        pairs.append((component, path, rank, alpha, down, up))
    return pairs


def merge(modules, pairs, multiplier=1.0):
    with torch.no_grad():
        for component, path, rank, alpha, down, up in pairs:
            weight = modules[component].get_submodule(path).weight
            scale = (alpha if alpha is not None else rank) / rank
            delta = up.reshape(up.shape[0], rank) @ down.reshape(rank, -1)
            weight += multiplier * scale * delta.reshape(weight.shape)


SAFETENSORS_DTYPES = {"F32": (np.dtype("<f4"), 4), "F16": (np.dtype("<f2"), 2), "BF16": (None, 2)}


def tensor_bytes(t: torch.Tensor, dtype: str) -> bytes:
    if dtype == "BF16":
        bits = t.to(torch.float32).contiguous().numpy().view(np.uint32)
        return (bits >> 16).astype("<u2").tobytes()  # exact: the values were rounded to bfloat16
    return t.detach().numpy().astype(SAFETENSORS_DTYPES[dtype][0]).tobytes()


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], dtype: str, metadata: dict[str, str] | None):
    """As the safetensors library writes: tensors ordered by alignment (all one dtype here) then name, header JSON
    padded with spaces to a multiple of 8, data_offsets relative to the data section."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        blob = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header = {"__metadata__": metadata, **header}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def kohya_tensors(pairs, include_te=True):
    prefixes = {"unet": "lora_unet_", "text_encoder": "lora_te_"}
    out = {}
    for component, path, rank, alpha, down, up in pairs:
        if component != "unet" and not include_te:
            continue
        name = prefixes[component] + path.replace(".", "_")
        out[name + ".lora_down.weight"] = down
        out[name + ".lora_up.weight"] = up
        if alpha is not None:
            out[name + ".alpha"] = torch.tensor(alpha)
    return out


def peft_tensors(pairs, include_te=True):
    out = {}
    for component, path, rank, alpha, down, up in pairs:
        if component != "unet" and not include_te:
            continue
        scale = (alpha if alpha is not None else rank) / rank  # exact: powers of two
        out[f"{component}.{path}.lora_A.weight"] = down
        out[f"{component}.{path}.lora_B.weight"] = up * scale
    return out


KOHYA_METADATA = {
    "ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "2.0",
    "ss_base_model_version": "sd_v1", "ss_output_name": "tiny_test", "ss_training_comment": "LocalDiffusion test file",
    "ss_network_args": json.dumps({"conv_dim": "4", "conv_alpha": "2"}),
}


def sd15_unet_modules():
    """SD 1.5's UNet2DConditionModel modules that kohya's LoRA (Transformer2DModel's Linear and 1x1 Conv layers) and
    LoCon (ResnetBlock2D, Downsample2D, Upsample2D convs and time_emb_proj) train, by diffusers' names. Written out
    because instantiating diffusers' UNet needs the safetensors package, which is not installed here."""
    def transformer(prefix):
        yield f"{prefix}.proj_in", "conv"
        for attn in ("attn1", "attn2"):
            for leaf in ("to_q", "to_k", "to_v", "to_out.0"):
                yield f"{prefix}.transformer_blocks.0.{attn}.{leaf}", "linear"
        yield f"{prefix}.transformer_blocks.0.ff.net.0.proj", "linear"
        yield f"{prefix}.transformer_blocks.0.ff.net.2", "linear"
        yield f"{prefix}.proj_out", "conv"

    def resnet(prefix, shortcut):
        yield f"{prefix}.conv1", "conv"
        yield f"{prefix}.time_emb_proj", "linear"
        yield f"{prefix}.conv2", "conv"
        if shortcut:
            yield f"{prefix}.conv_shortcut", "conv"

    out = []
    channels = [320, 640, 1280, 1280]
    for b in range(4):
        for r in range(2):
            out += resnet(f"down_blocks.{b}.resnets.{r}", r == 0 and b in (1, 2))
            if b < 3:
                out += transformer(f"down_blocks.{b}.attentions.{r}")
        if b < 3:
            out.append((f"down_blocks.{b}.downsamplers.0.conv", "conv"))
    out += transformer("mid_block.attentions.0")
    out += list(resnet("mid_block.resnets.0", False)) + list(resnet("mid_block.resnets.1", False))
    for b in range(4):
        for r in range(3):
            out += resnet(f"up_blocks.{b}.resnets.{r}", True)
            if b > 0:
                out += transformer(f"up_blocks.{b}.attentions.{r}")
        if b < 3:
            out.append((f"up_blocks.{b}.upsamplers.0.conv", "conv"))
    assert len(channels) == 4
    return out


def sd15_key_table():
    """kohya names for SD 1.5's LoRA-trained modules and diffusers v0.31.0's converted (PEFT) names."""
    from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_lora_to_diffusers
    from diffusers.utils.state_dict_utils import convert_state_dict_to_peft, convert_unet_state_dict_to_peft

    modules = [("unet", path, kind) for path, kind in sd15_unet_modules()]
    for i in range(12):  # CLIP ViT-L/14's text encoder layers (transformers is not installable; the names are its)
        for leaf in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"):
            modules.append(("text_encoder", f"text_model.encoder.layers.{i}.{leaf}", "linear"))
    state, kohya_of = {}, {}
    for component, path, kind in modules:
        name = ("lora_unet_" if component == "unet" else "lora_te_") + path.replace(".", "_")
        shape = (1, 1, 1, 1) if kind == "conv" else (1, 1)
        state[name + ".lora_down.weight"] = torch.zeros(shape)
        state[name + ".lora_up.weight"] = torch.zeros(shape)
        state[name + ".alpha"] = torch.tensor(1.0)
        kohya_of[name] = (component, path)
    converted, _ = _convert_non_diffusers_lora_to_diffusers(dict(state))
    unet_sd = {k[len("unet."):]: v for k, v in converted.items() if k.startswith("unet.")}
    te_sd = {k: v for k, v in converted.items() if k.startswith("text_encoder.")}
    peft = ["unet." + k for k in convert_unet_state_dict_to_peft(unet_sd)] + list(convert_state_dict_to_peft(te_sd))
    downs = sorted(k for k in peft if k.endswith(".lora_A.weight"))
    # diffusers' output comes in the kohya keys' order, one lora_A per kohya module
    kohya_names = [k[: -len(".lora_down.weight")] for k in state if k.endswith(".lora_down.weight")]
    converted_downs = [k for k in peft if k.endswith(".lora_A.weight")]
    assert len(converted_downs) == len(kohya_names), (len(converted_downs), len(kohya_names))
    return {
        "diffusers": "v0.31.0 _convert_non_diffusers_lora_to_diffusers + convert_unet_state_dict_to_peft / convert_state_dict_to_peft",
        "modules": [{"component": c, "path": p, "kind": k} for c, p, k in modules],
        "pairs": [{"kohya": k, "peft": p} for k, p in zip(kohya_names, converted_downs)],
        "count": len(downs),
    }


def main() -> int:
    text_encoder, unet, decoder, encoder, encoder_mean = nets()
    modules = {"unet": unet, "text_encoder": text_encoder}
    pairs = make_pairs(modules)

    write_safetensors(OUT / "kohya_fp16.safetensors", kohya_tensors(pairs), "F16", KOHYA_METADATA)
    write_safetensors(OUT / "kohya_bf16.safetensors", kohya_tensors(pairs), "BF16", KOHYA_METADATA)
    write_safetensors(OUT / "peft_fp32.safetensors", peft_tensors(pairs), "F32", None)
    write_safetensors(OUT / "unet_only_fp32.safetensors", peft_tensors(pairs, include_te=False), "F32", None)
    te2 = {"lora_te2_blocks_0_attn_q.lora_down.weight": pairs[5][4], "lora_te2_blocks_0_attn_q.lora_up.weight": pairs[5][5]}
    write_safetensors(OUT / "sdxl_te2.safetensors", te2, "F16", {"ss_base_model_version": "sdxl_base_v1-0"})

    merge(modules, pairs)
    tiny = btm.VARIANTS[0]
    assert tiny.name == "tiny"
    if MERGED.exists():
        shutil.rmtree(MERGED)
    shutil.copytree(ROOT / "models" / "test" / "tiny", MERGED)
    staging = MERGED.parent / "tiny-lora-merged.staging"
    if staging.exists():
        shutil.rmtree(staging)
    vocab = json.loads((MERGED / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    btm.export_variant(tiny, (text_encoder, unet, decoder, encoder, encoder_mean), staging, vocab)
    for component in ("unet", "text_encoder"):
        shutil.copy(staging / component / "model.onnx", MERGED / component / "model.onnx")
    shutil.rmtree(staging)

    TESTDATA.mkdir(parents=True, exist_ok=True)
    table = sd15_key_table()
    (TESTDATA / "sd15_kohya_to_peft.json").write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{len(LAYERS)} layers in {OUT}; merged model in {MERGED}; {table['count']} SD 1.5 kohya keys converted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
