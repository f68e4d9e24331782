#!/usr/bin/env python3
"""Convert models/test/tiny-flux-schnell and tiny-flux-dev into Black Forest Labs' TensorRT ONNX layout (bfl-tiny-flux-*).

Black Forest Labs' own ONNX release (Hugging Face black-forest-labs/FLUX.1-dev-onnx, FLUX.1-schnell-onnx) was written by
github.com/black-forest-labs/flux's src/flux/trt/exporter/ (removed in commit 81450d5; read at its parent). What an engine
sees of it, and what this script makes of the tiny diffusers-layout exports by graph surgery only (same weights, fp32):
  * clip.opt/model.onnx: input_ids int32 [B,77] (a Cast to int64 in front of the original graph) -> pooled_embeddings
    (the pooler_output; CLIPTextModel's other outputs dropped), as clip_exporter.py's names;
  * t5.opt/model.onnx: input_ids int32 [B,L] with L static -> text_embeddings [B,L,D] (t5_exporter.py);
  * transformer.opt/fp32/model.onnx: the same inputs as diffusers' (hidden_states, encoder_hidden_states [B,L,D] with L
    static, pooled_projections, timestep, img_ids, txt_ids [L,3], dev: guidance) -> latent (transformer_exporter.py).
    BFL ships bf16/fp8/fp4 folders; fp32 is the precision folder the tiny model uses (the engine's order: fp32, fp16, bf16);
  * vae.opt/model.onnx: latent [B,16,h,w] -> images. The exporter traced flux.modules.autoencoder.Decoder alone
    (cli.py: "vae": ae.decoder); z / scale_factor + shift_factor stays in the TensorRT engine's Python wrapper
    (trt/engine/vae_engine.py, VAEDecoder.__call__), so the graph takes unscaled latents, as diffusers' vae_decoder does;
  * no model_index.json, scheduler config, component configs or vae encoder; tokenizer/ (CLIP vocab.json, merges.txt and
    its special-token files) and tokenizer_2/ (spiece.model ...) are copied in, as a user must add them to BFL's folder.
Static T5 lengths: schnell 24, dev 32 (BFL: 256 and 512; small here, and different, so that a test sees the engine read them).

Also writes models/test/bfl-tiny-flux-dev-bf16/transformer.opt/bf16/model.onnx: dev's transformer with the bf16 build's
bfloat16 inputs and output around the same float32 graph (Casts only; tests put it beside bfl-tiny-flux-dev's other files), and
models/test/refused/flux-bf16-transformer/model.onnx: a 1-node bfloat16 MatMul graph with BFL's transformer input
names, which ONNX Runtime's CPU provider has no kernel for (the engine's bf16-on-the-CPU refusal is tested with it).

    /usr/bin/python3 tools/build_flux_bfl_test_model.py   (after build_flux_test_model.py; a second or two, no diffusers)
"""
import shutil
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent / "models" / "test"
LENGTHS = {"schnell": 24, "dev": 32}


def _fix_dim(value_info, axis, size):
    dim = value_info.type.tensor_type.shape.dim[axis]
    dim.ClearField("dim_param")
    dim.dim_value = size


def _int32_ids(graph):
    """input_ids becomes int32; a Cast gives the original graph its int64 ids."""
    ids = next(i for i in graph.input if i.name == "input_ids")
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == "input_ids":
                node.input[k] = "input_ids_int64"
    ids.type.tensor_type.elem_type = TensorProto.INT32
    graph.node.insert(0, helper.make_node("Cast", ["input_ids"], ["input_ids_int64"], to=TensorProto.INT64, name="ids_to_int64"))


def _only_output(graph, old, new):
    """Keeps output `old` alone, renamed `new` (an Identity: the producing node keeps its tensor name)."""
    kept = next(o for o in graph.output if o.name == old)
    shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in kept.type.tensor_type.shape.dim]
    del graph.output[:]
    graph.node.append(helper.make_node("Identity", [old], [new], name=f"{new}_out"))
    graph.output.append(helper.make_tensor_value_info(new, kept.type.tensor_type.elem_type, shape))


def _prune(graph):
    """Drops nodes no output needs (CLIP's hidden_states.* and last_hidden_state heads)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = {i for n in graph.node for i in n.input}
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    del graph.value_info[:]


def _save(model, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def convert(variant):
    source = ROOT / f"tiny-flux-{variant}"
    target = ROOT / f"bfl-tiny-flux-{variant}"
    if target.exists():
        shutil.rmtree(target)
    length = LENGTHS[variant]

    clip = onnx.load(str(source / "text_encoder" / "model.onnx"))
    _int32_ids(clip.graph)
    _only_output(clip.graph, "pooler_output", "pooled_embeddings")
    _fix_dim(clip.graph.input[0], 1, 77)
    _prune(clip.graph)
    _save(clip, target / "clip.opt" / "model.onnx")

    t5 = onnx.load(str(source / "text_encoder_2" / "model.onnx"))
    _int32_ids(t5.graph)
    _only_output(t5.graph, "last_hidden_state", "text_embeddings")
    _fix_dim(t5.graph.input[0], 1, length)
    _fix_dim(t5.graph.output[0], 1, length)
    _prune(t5.graph)
    _save(t5, target / "t5.opt" / "model.onnx")

    transformer = onnx.load(str(source / "transformer" / "model.onnx"))
    graph = transformer.graph
    _only_output(graph, "out_hidden_states", "latent")
    for value in graph.input:
        if value.name == "encoder_hidden_states":
            _fix_dim(value, 1, length)
        elif value.name == "txt_ids":
            _fix_dim(value, 0, length)
    del graph.value_info[:]
    _save(transformer, target / "transformer.opt" / "fp32" / "model.onnx")

    vae = onnx.load(str(source / "vae_decoder" / "model.onnx"))
    graph = vae.graph
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == "latent_sample":
                node.input[k] = "latent"
    graph.input[0].name = "latent"
    _only_output(graph, "sample", "images")
    _save(vae, target / "vae.opt" / "model.onnx")

    for folder in ("tokenizer", "tokenizer_2"):
        shutil.copytree(source / folder, target / folder)
    return target


def bf16_transformer():
    """BFL's transformer inputs in bfloat16 feeding a bfloat16 MatMul, which the CPU provider cannot run."""
    hidden = helper.make_tensor_value_info("hidden_states", TensorProto.BFLOAT16, ["B", "latent_dim", 64])
    inputs = [hidden] + [
        helper.make_tensor_value_info(name, TensorProto.BFLOAT16, shape) for name, shape in [
            ("encoder_hidden_states", ["B", 32, 96]), ("pooled_projections", ["B", 32]), ("timestep", ["B"])]
    ] + [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in [("img_ids", ["latent_dim", 3]), ("txt_ids", [32, 3])]]
    weight = helper.make_tensor("w", TensorProto.BFLOAT16, [64, 64], [1.0] * (64 * 64))
    node = helper.make_node("MatMul", ["hidden_states", "w"], ["latent"], name="proj")
    graph = helper.make_graph([node], "bf16_transformer", inputs,
                              [helper.make_tensor_value_info("latent", TensorProto.BFLOAT16, ["B", "latent_dim", 64])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="build_flux_bfl_test_model")
    model.ir_version = 8
    _save(model, ROOT / "refused" / "flux-bf16-transformer" / "model.onnx")


def bf16_io_transformer():
    """bfl-tiny-flux-dev's transformer with BFL's bf16 build's I/O: hidden_states, encoder_hidden_states,
    pooled_projections, timestep and guidance bfloat16 (img_ids/txt_ids stay float32, as transformer_exporter.py makes
    them), latent bfloat16. Casts at the boundary around the float32 graph, which the CPU runs (a Cast is all it does
    in bfloat16): the engine's bf16 conversion is tested end to end without GPU kernels."""
    model = onnx.load(str(ROOT / "bfl-tiny-flux-dev" / "transformer.opt" / "fp32" / "model.onnx"))
    graph = model.graph
    casts = []
    for value in graph.input:
        if value.name in ("img_ids", "txt_ids"):
            continue
        inner = value.name + "_float32"
        for node in graph.node:
            for k, name in enumerate(node.input):
                if name == value.name:
                    node.input[k] = inner
        value.type.tensor_type.elem_type = TensorProto.BFLOAT16
        casts.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT, name=inner))
    for i, node in enumerate(casts):
        graph.node.insert(i, node)
    out = graph.output[0]
    for node in graph.node:
        for k, name in enumerate(node.output):
            if name == "latent":
                node.output[k] = "latent_float32"
    graph.node.append(helper.make_node("Cast", ["latent_float32"], ["latent"], to=TensorProto.BFLOAT16, name="latent_bf16"))
    out.type.tensor_type.elem_type = TensorProto.BFLOAT16
    _save(model, ROOT / "bfl-tiny-flux-dev-bf16" / "transformer.opt" / "bf16" / "model.onnx")


if __name__ == "__main__":
    for v in LENGTHS:
        print("wrote", convert(v))
    bf16_transformer()
    print("wrote", ROOT / "refused" / "flux-bf16-transformer" / "model.onnx")
    bf16_io_transformer()
    print("wrote", ROOT / "bfl-tiny-flux-dev-bf16" / "transformer.opt" / "bf16" / "model.onnx")
