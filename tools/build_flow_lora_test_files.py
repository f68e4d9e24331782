#!/usr/bin/env python3
"""Writes LoRA test files for the tiny SD 3 and FLUX.1 models and torch-merged references for them.

models/test/lora/ gets (all values exact in float16 and bfloat16, so every file of one model gives the same merge):
  flux_kohya_fp16.safetensors   kohya sd-scripts' FLUX format (networks.lora_flux): lora_unet_double_blocks_0_img_attn_qkv
                                (q, k, v fused: up [3·inner, r]), …_txt_attn_qkv, …_img_attn_proj, …_img_mlp_0,
                                …_txt_mod_lin, lora_unet_single_blocks_0_linear1 (q, k, v and the MLP input fused:
                                up [3·inner + mlp, r]), …_linear2, …_modulation_lin, and lora_te1_blocks_0_attn_q (CLIP);
                                .lora_down.weight / .lora_up.weight / .alpha, float16, kohya's ss_* metadata
  flux_peft_fp32.safetensors    the same LoRA as diffusers holds it after loading the kohya file (diffusers v0.31.0's
                                _convert_kohya_flux_lora_to_diffusers: transformer.<module>.lora_A.weight / lora_B.weight,
                                alpha/rank folded into A and B) plus text_encoder.blocks.0.attn.q.lora_A/B, float32,
                                metadata {"format": "pt"} as diffusers' save_lora_weights writes
  flux_diffusers_fp16.safetensors  the older diffusers naming (transformer.<module>.lora.down.weight / .lora.up.weight
                                and <module>.alpha, alpha not folded), float16
  flux_xlabs_bf16.safetensors   XLabs' x-flux format (as XLabs-AI/flux-RealismLora): double_blocks.0.processor.qkv_lora1
                                (image q, k, v fused: up [3·inner, r]), .qkv_lora2 (text), .proj_lora1, .proj_lora2 and
                                single_blocks.0.processor.proj_lora1; .down.weight / .up.weight, no alpha, bfloat16, no metadata
  flux_xlabs_prefixed_fp16.safetensors  the same keys prefixed diffusion_model., float16
  sd3_peft_fp32.safetensors     an SD 3 transformer LoRA in PEFT keys (transformer.transformer_blocks.0.attn.to_q.lora_A…,
                                add_k_proj, to_out.0, ff.net.2, a Gemm (norm1.linear), context_embedder), float32
  sd3_peft_fp16.safetensors     the same in float16
models/test/lora-merged/flux-dev-xlabs/transformer/model.onnx is tiny-flux-dev's transformer with the XLabs file merged
(converted by diffusers v0.31.0's _convert_xlabs_flux_lora_to_diffusers, then W' = W + B·A: XLabs files carry no alpha).
models/test/lora-merged/flux-dev/{transformer,text_encoder}/model.onnx and models/test/lora-merged/sd3/transformer/model.onnx:
the tiny models' torch nets (rebuilt by build_flux_test_model.build / build_sd3_test_model.build, checked against the
committed exports) with W' = W + B·A merged in torch from the diffusers-side state dict (text encoder: W + (alpha/rank)·up·down),
exported the same way. Only the changed components are stored: tests lay them over a copy of tiny-flux-dev / tiny-sd3.

diffusers v0.31.0's kohya converter hard-codes FLUX.1's single-block split sizes (3072, 3072, 3072, 12288); this script
runs it on the kohya file without the linear1 keys and splits linear1 itself the way the converter does (A copied to
each of to_q, to_k, to_v, proj_mlp; B split by rows), with the tiny model's sizes (32, 32, 32, 128).

Run: PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_flow_lora_test_files.py
"""
import shutil
import sys
import tempfile
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_flux_test_model as flux  # noqa: E402
import build_lora_test_files as blt  # noqa: E402
import build_sd3_test_model as sd3  # noqa: E402
import flow_test_nets as nets  # noqa: E402

LORA = nets.ROOT / "lora"
MERGED = nets.ROOT / "lora-merged"

# kohya module → diffusers modules (v0.31.0's _convert_sd_scripts_to_ai_toolkit table), rank, alpha
FLUX_KOHYA = [
    ("double_blocks_0_img_attn_qkv", ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_k", "transformer_blocks.0.attn.to_v"], 4, 2.0),
    ("double_blocks_0_txt_attn_qkv", ["transformer_blocks.0.attn.add_q_proj", "transformer_blocks.0.attn.add_k_proj", "transformer_blocks.0.attn.add_v_proj"], 2, 2.0),
    ("double_blocks_0_img_attn_proj", ["transformer_blocks.0.attn.to_out.0"], 4, 8.0),
    ("double_blocks_0_img_mlp_0", ["transformer_blocks.0.ff.net.0.proj"], 2, 1.0),
    ("double_blocks_0_txt_mod_lin", ["transformer_blocks.0.norm1_context.linear"], 4, 2.0),
    ("single_blocks_0_linear1", ["single_transformer_blocks.0.attn.to_q", "single_transformer_blocks.0.attn.to_k",
                                 "single_transformer_blocks.0.attn.to_v", "single_transformer_blocks.0.proj_mlp"], 4, 2.0),
    ("single_blocks_0_linear2", ["single_transformer_blocks.0.proj_out"], 2, 2.0),
    ("single_blocks_0_modulation_lin", ["single_transformer_blocks.0.norm.linear"], 2, 1.0),
]
FLUX_TE = ("blocks.0.attn.q", 4, 2.0)  # the tiny CLIP's module path (lora_te1_blocks_0_attn_q)
SD3_LAYERS = [  # (module, rank, alpha): PEFT files carry no alpha, so alpha/rank is folded into lora_B
    ("transformer_blocks.0.attn.to_q", 4, 2.0), ("transformer_blocks.0.attn.add_k_proj", 2, 2.0),
    ("transformer_blocks.1.attn.to_out.0", 4, 8.0), ("transformer_blocks.1.ff.net.2", 2, 1.0),
    ("transformer_blocks.0.norm1.linear", 2, 2.0), ("context_embedder", 2, 2.0),
]
# XLabs processor LoRA → diffusers modules (v0.31.0's _convert_xlabs_flux_lora_to_diffusers), rank. Single blocks' qkv_lora
# is left out: that converter names it norm.linear but never stores it and then raises on the leftover key.
FLUX_XLABS = [
    ("double_blocks.0.processor.qkv_lora1", ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_k", "transformer_blocks.0.attn.to_v"], 4),
    ("double_blocks.0.processor.qkv_lora2", ["transformer_blocks.0.attn.add_q_proj", "transformer_blocks.0.attn.add_k_proj", "transformer_blocks.0.attn.add_v_proj"], 4),
    ("double_blocks.0.processor.proj_lora1", ["transformer_blocks.0.attn.to_out.0"], 4),
    ("double_blocks.0.processor.proj_lora2", ["transformer_blocks.0.attn.to_add_out"], 2),
    ("single_blocks.0.processor.proj_lora1", ["single_transformer_blocks.0.proj_out"], 4),
]
PT = {"format": "pt"}


def exact(t: torch.Tensor) -> torch.Tensor:
    """Rounded so that float16 and bfloat16 both hold the value exactly."""
    v = t.to(torch.float16).to(torch.float32).to(torch.bfloat16).to(torch.float32)
    assert torch.equal(v.to(torch.float16).to(torch.float32), v)
    return v


def check_rebuilt(module, export, committed: Path):
    """The rebuilt torch net must be the one the committed model was exported from."""
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "model.onnx"
        export(module, path)
        fresh = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    old = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(committed)).graph.initializer}
    assert fresh.keys() == old.keys() and all((fresh[k] == old[k]).all() for k in old), f"{committed} is not the rebuilt net"


def add(module, path, delta):
    with torch.no_grad():
        module.get_submodule(path).weight += delta


def flux_files():
    clip_l, _, transformer, _ = flux.build("dev")
    check_rebuilt(transformer, lambda m, p: flux.export_transformer(m, True, p), nets.ROOT / "tiny-flux-dev" / "transformer" / "model.onnx")
    check_rebuilt(clip_l, lambda m, p: nets.export_clip(m, p, projection=False), nets.ROOT / "tiny-flux-dev" / "text_encoder" / "model.onnx")
    gen = torch.Generator().manual_seed(5151)
    kohya, old = {}, {}
    for name, targets, rank, alpha in FLUX_KOHYA:
        first = transformer.get_submodule(targets[0]).weight
        out_f = sum(transformer.get_submodule(t).weight.shape[0] for t in targets)
        down = exact(torch.randn(rank, first.shape[1], generator=gen) * 0.3)
        up = exact(torch.randn(out_f, rank, generator=gen) * 0.3)
        kohya[f"lora_unet_{name}.lora_down.weight"], kohya[f"lora_unet_{name}.lora_up.weight"] = down, up
        kohya[f"lora_unet_{name}.alpha"] = torch.tensor(alpha)
        rows = torch.split(up, [transformer.get_submodule(t).weight.shape[0] for t in targets], dim=0)
        for target, part in zip(targets, rows):
            old[f"transformer.{target}.lora.down.weight"], old[f"transformer.{target}.lora.up.weight"] = down, part
            old[f"transformer.{target}.alpha"] = torch.tensor(alpha)
    te_path, te_rank, te_alpha = FLUX_TE
    te_down = exact(torch.randn(te_rank, 32, generator=gen) * 0.3)
    te_up = exact(torch.randn(32, te_rank, generator=gen) * 0.3)
    te = "lora_te1_" + te_path.replace(".", "_")
    kohya[te + ".lora_down.weight"], kohya[te + ".lora_up.weight"], kohya[te + ".alpha"] = te_down, te_up, torch.tensor(te_alpha)
    old[f"text_encoder.{te_path}.lora.down.weight"], old[f"text_encoder.{te_path}.lora.up.weight"] = te_down, te_up
    old[f"text_encoder.{te_path}.alpha"] = torch.tensor(te_alpha)

    # diffusers' converter for everything but linear1 (its split sizes are FLUX.1's), linear1 split as it does
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers
    linear1 = "lora_unet_single_blocks_0_linear1"
    peft = _convert_kohya_flux_lora_to_diffusers({k: v.clone() for k, v in kohya.items() if k.startswith("lora_unet_") and not k.startswith(linear1)})
    _, targets, rank, alpha = next(x for x in FLUX_KOHYA if "linear1" in x[0])
    scale = alpha / rank  # 0.5: the converter's scale_down, scale_up 1
    dims = [transformer.get_submodule(t).weight.shape[0] for t in targets]
    for target, part in zip(targets, torch.split(kohya[linear1 + ".lora_up.weight"], dims, dim=0)):
        peft[f"transformer.{target}.lora_A.weight"] = kohya[linear1 + ".lora_down.weight"] * scale
        peft[f"transformer.{target}.lora_B.weight"] = part.clone()
    expected = {f"transformer.{t}.lora_{p}.weight" for _, ts, _, _ in FLUX_KOHYA for t in ts for p in "AB"}
    assert set(peft) == expected, sorted(set(peft) ^ expected)
    peft[f"text_encoder.{te_path}.lora_A.weight"] = te_down * (te_alpha / te_rank)
    peft[f"text_encoder.{te_path}.lora_B.weight"] = te_up

    blt.write_safetensors(LORA / "flux_kohya_fp16.safetensors", kohya, "F16", {
        "ss_network_module": "networks.lora_flux", "ss_network_dim": "4", "ss_network_alpha": "2.0",
        "ss_base_model_version": "flux1", "ss_output_name": "tiny_flux_test", "ss_training_comment": "LocalDiffusion test file"})
    blt.write_safetensors(LORA / "flux_peft_fp32.safetensors", peft, "F32", PT)
    blt.write_safetensors(LORA / "flux_diffusers_fp16.safetensors", old, "F16", PT)

    for key in peft:
        if key.endswith(".lora_A.weight"):
            module = key[: -len(".lora_A.weight")]
            b = peft[module + ".lora_B.weight"]
            component, path = module.split(".", 1)
            if component == "transformer":
                add(transformer, path, b @ peft[key])
            else:
                add(clip_l, "base." + path, b @ peft[key])
    out = MERGED / "flux-dev"
    if out.exists():
        shutil.rmtree(out)
    flux.export_transformer(transformer, True, out / "transformer" / "model.onnx")
    nets.export_clip(clip_l, out / "text_encoder" / "model.onnx", projection=False)


def flux_xlabs_files():
    _, _, transformer, _ = flux.build("dev")
    gen = torch.Generator().manual_seed(7373)
    xlabs = {}
    for name, targets, rank in FLUX_XLABS:
        first = transformer.get_submodule(targets[0]).weight
        out_f = sum(transformer.get_submodule(t).weight.shape[0] for t in targets)
        xlabs[f"{name}.down.weight"] = exact(torch.randn(rank, first.shape[1], generator=gen) * 0.3)
        xlabs[f"{name}.up.weight"] = exact(torch.randn(out_f, rank, generator=gen) * 0.3)
    prefixed = {"diffusion_model." + k: v for k, v in xlabs.items()}

    from diffusers.loaders.lora_conversion_utils import _convert_xlabs_flux_lora_to_diffusers
    peft = _convert_xlabs_flux_lora_to_diffusers({k: v.clone() for k, v in xlabs.items()})
    expected = {f"transformer.{t}.lora_{p}.weight" for _, ts, _ in FLUX_XLABS for t in ts for p in "AB"}
    assert set(peft) == expected, sorted(set(peft) ^ expected)
    same = _convert_xlabs_flux_lora_to_diffusers({k: v.clone() for k, v in prefixed.items()})
    assert same.keys() == peft.keys() and all(torch.equal(same[k], peft[k]) for k in peft)
    # The fact the engine follows in refusing a single block's qkv_lora: diffusers v0.31.0 cannot load one either.
    try:
        _convert_xlabs_flux_lora_to_diffusers({"single_blocks.0.processor.qkv_lora1.down.weight": torch.zeros(4, 32),
                                               "single_blocks.0.processor.qkv_lora1.up.weight": torch.zeros(96, 4)})
        raise AssertionError("diffusers converted a single block's qkv_lora")
    except ValueError:
        pass

    blt.write_safetensors(LORA / "flux_xlabs_bf16.safetensors", xlabs, "BF16", None)
    blt.write_safetensors(LORA / "flux_xlabs_prefixed_fp16.safetensors", prefixed, "F16", None)
    for key in peft:
        if key.endswith(".lora_A.weight"):
            module = key[: -len(".lora_A.weight")]
            add(transformer, module.split(".", 1)[1], peft[module + ".lora_B.weight"] @ peft[key])
    out = MERGED / "flux-dev-xlabs"
    if out.exists():
        shutil.rmtree(out)
    flux.export_transformer(transformer, True, out / "transformer" / "model.onnx")


def sd3_files():
    _, _, _, transformer, _ = sd3.build()
    check_rebuilt(transformer, sd3.export_transformer, nets.ROOT / "tiny-sd3" / "transformer" / "model.onnx")
    gen = torch.Generator().manual_seed(6262)
    peft = {}
    for path, rank, alpha in SD3_LAYERS:
        weight = transformer.get_submodule(path).weight
        down = exact(torch.randn(rank, weight.shape[1], generator=gen) * 0.3)
        up = exact(torch.randn(weight.shape[0], rank, generator=gen) * 0.3) * (alpha / rank)  # powers of two: exact
        peft[f"transformer.{path}.lora_A.weight"], peft[f"transformer.{path}.lora_B.weight"] = down, up
        add(transformer, path, up @ down)
    blt.write_safetensors(LORA / "sd3_peft_fp32.safetensors", peft, "F32", PT)
    blt.write_safetensors(LORA / "sd3_peft_fp16.safetensors", peft, "F16", PT)
    out = MERGED / "sd3"
    if out.exists():
        shutil.rmtree(out)
    sd3.export_transformer(transformer, out / "transformer" / "model.onnx")


def main() -> int:
    flux_files()
    flux_xlabs_files()
    sd3_files()
    size = sum(f.stat().st_size for f in MERGED.rglob("*") if f.is_file())
    print(f"LoRAs in {LORA}; merged components in {MERGED} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
