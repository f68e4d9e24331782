#!/usr/bin/env python3
"""Rewrites a Stable Diffusion UNet export's attention blocks into ONNX Runtime's fused MultiHeadAttention.

A UNet exported by torch.onnx spells every attention out: per-head reshapes and transposes of the projected query,
key and value, MatMul(q, kᵀ), a scale, Softmax, MatMul with v, and the heads merged back. At 512×512 the scores of one
self-attention are 4096×4096 per head and image; ONNX Runtime's contrib operator com.microsoft.MultiHeadAttention
computes the same thing without writing them out (a flash-attention kernel on the CPU since ONNX Runtime 1.19, fused
kernels on CUDA), which saves memory and time. ONNX Runtime's own transformer optimizer does this rewrite but is a
Python package that cannot be installed here; this tool needs only Debian's python3-onnx and python3-numpy.

How a block is recognised, whatever the exporter's spelling (torch 1.13's bmm/baddbmm form, torch 2's
scaled_dot_product_attention form, the test models' form): from each Softmax over the last axis, up through scalar
Mul/Div to a MatMul; each of its inputs up through Reshape/Transpose/scalar Mul/Div (and the Shape/Gather/Concat
nodes that compute reshape targets) to the tensor it started from (the query and key projections); the Softmax's
consumer MatMul and its other input up to the value projection; down from it through Reshape/Transpose to the
merged-heads tensor. The number of heads is read from the query's head-split Reshape target. Then the block is
*evaluated with numpy* on random inputs of two different sizes and compared with multi-head attention at the scale
the block's constants give; only a block that agrees (to 1e-4 relative) is replaced, so a masked or otherwise
different attention is left alone. Nodes left without consumers are removed.

    python3 tools/fuse_attention.py --model sd15-onnx --out sd15-onnx-fused

writes a copy of the model folder (other components are hard-linked where possible, else copied) with a fused
unet/model.onnx (weights in one unet/model.onnx_data file beside it when the model is over 2 GB). The source folder
is never written. fp32 UNets only: the CPU kernel takes float32.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

PASS_THROUGH = {"Reshape", "Transpose"}
SCALAR_OPS = {"Mul", "Div"}
SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Cast", "Slice", "Squeeze", "Mul", "Div", "Add", "Sub", "ConstantOfShape"}


class Graph:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.g = model.graph
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.initializers = {t.name: t for t in self.g.initializer}

    def constant(self, name: str):
        """The value of a tensor known without running the graph, or None."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
        return None

    def scalar(self, name: str):
        value = self.constant(name)
        if value is None or value.size != 1:
            return None
        return float(value.reshape(-1)[0])


def is_zero(graph: Graph, name: str) -> bool:
    """A tensor that is zero whatever the inputs: all-zero constants, x·0, ConstantOfShape(0) (baddbmm's beta = 0 term)."""
    value = graph.constant(name)
    if value is not None:
        return not np.any(value)
    node = graph.producer.get(name)
    if node is None:
        return False
    if node.op_type == "Mul":
        return any(graph.scalar(i) == 0.0 for i in node.input)
    if node.op_type == "ConstantOfShape":
        value = next((numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"), np.zeros(1))
        return not np.any(value)
    return False


def shape_only(graph: Graph, name: str, depth: int = 0) -> bool:
    """A value computed from tensor shapes alone (e.g. torch 2's 1/√head_size scale), not from tensor contents."""
    node = graph.producer.get(name)
    if node is None:
        return graph.constant(name) is not None
    if node.op_type == "Shape":
        return True
    if depth > 12 or node.op_type not in SHAPE_OPS | {"Sqrt", "Reciprocal", "Pow"}:
        return False
    return all(shape_only(graph, i, depth + 1) for i in node.input if i)


def walk_up(graph: Graph, name: str, nodes: list, scale: list):
    """From a tensor up through reshapes, transposes, float casts and scalar scaling (a constant, or None when
    computed from shapes) to the tensor a branch starts from."""
    while True:
        node = graph.producer.get(name)
        if node is None:
            return name
        if node.op_type in PASS_THROUGH or (node.op_type == "Cast" and is_float_cast(node)):
            nodes.append(node)
            name = node.input[0]
        elif node.op_type in SCALAR_OPS:
            s0, s1 = graph.scalar(node.input[0]), graph.scalar(node.input[1])
            if s1 is not None or shape_only(graph, node.input[1]):
                scale.append(None if s1 is None else s1 if node.op_type == "Mul" else 1.0 / s1)
                data = node.input[0]
            elif node.op_type == "Mul" and (s0 is not None or shape_only(graph, node.input[0])):
                scale.append(s0)
                data = node.input[1]
            else:
                return name
            nodes.append(node)
            name = data
        elif node.op_type == "Add" and (is_zero(graph, node.input[0]) or is_zero(graph, node.input[1])):
            nodes.append(node)
            name = node.input[1] if is_zero(graph, node.input[0]) else node.input[0]
        else:
            return name


def is_float_cast(node) -> bool:
    return any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in node.attribute)


def heads_of(graph: Graph, chain: list):
    """The head count from the first Reshape above the query: its target's third entry ([B, S, H, D])."""
    for node in reversed(chain):  # chain runs from the scores upwards; the last Reshape is nearest the source
        if node.op_type != "Reshape":
            continue
        target = graph.constant(node.input[1])
        if target is not None and target.size == 4:
            return int(target[2]), None
        concat = graph.producer.get(node.input[1])
        if concat is not None and concat.op_type == "Concat" and len(concat.input) == 4:
            h = graph.constant(concat.input[2])  # the head size may be computed (dim // heads); the count is a constant
            if h is not None:
                return int(h.reshape(-1)[0]), None
        return None
    return None


def collect(graph: Graph, sink: str, sources: set[str]):
    """Every node between the sources and the sink (reshape-target computations included), in graph order, and the
    tensors outside the block whose shapes (only) the block reads."""
    # Tensors computed from the sources (the block's inside), up to the sink.
    inside, frontier = set(sources), list(sources)
    while frontier and len(inside) < 5000:
        for node in graph.consumers.get(frontier.pop(), []):
            for out in node.output:
                if out not in inside:
                    inside.add(out)
                    if out != sink:
                        frontier.append(out)
    needed, stack, seen, outer = set(), [sink], set(), set()
    while stack:
        name = stack.pop()
        if name in sources or name in seen:
            continue
        seen.add(name)
        node = graph.producer.get(name)
        if node is None:
            if name in graph.initializers:
                continue
            return None, None  # a graph input other than the sources: not a self-contained block
        needed.add(id(node))
        if node.op_type == "Shape" and node.input[0] not in inside:
            outer.add(node.input[0])  # e.g. reshape(x.shape) with x the block's input: its shape is all that is read
            continue
        stack.extend(i for i in node.input if i)
    return [n for n in graph.g.node if id(n) in needed], outer


def projection(graph: Graph, name: str):
    """(input, input width, output width) of a Linear layer's output: MatMul with a constant weight, plus a bias."""
    node = graph.producer.get(name)
    if node is not None and node.op_type == "Add":
        data = [i for i in node.input if graph.constant(i) is None]
        if len(data) != 1:
            return None
        node = graph.producer.get(data[0])
    if node is None or node.op_type != "MatMul":
        return None
    weight = graph.constant(node.input[1])
    if weight is None or weight.ndim != 2:
        return None
    return node.input[0], weight.shape[0], weight.shape[1]


def evaluate(graph: Graph, nodes: list, feeds: dict[str, np.ndarray], sink: str):
    """Runs the block with numpy (the handful of operators attention blocks are spelled with)."""
    values = dict(feeds)

    def get(name):
        if name in values:
            return values[name]
        return graph.constant(name)

    for node in nodes:
        x = [get(i) if i else None for i in node.input]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(attrs["value"])
        elif op == "Reshape":
            shape = [int(v) for v in x[1]]
            shape = [x[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
            out = x[0].reshape(shape)
        elif op == "Transpose":
            out = np.transpose(x[0], attrs.get("perm"))
        elif op == "MatMul":
            out = np.matmul(x[0], x[1])
        elif op == "Mul":
            out = x[0] * x[1]
        elif op == "Div":
            out = (x[0] / x[1]).astype(x[0].dtype) if x[0].dtype.kind == "f" else x[0] // x[1]
        elif op == "Add":
            out = x[0] + x[1]
        elif op == "Sub":
            out = x[0] - x[1]
        elif op == "Softmax":
            axis = attrs.get("axis", -1)
            e = np.exp(x[0] - x[0].max(axis=axis, keepdims=True))
            out = e / e.sum(axis=axis, keepdims=True)
        elif op == "Shape":
            out = np.array(x[0].shape, dtype=np.int64)
        elif op == "Gather":
            out = np.take(x[0], x[1], axis=attrs.get("axis", 0))
        elif op == "Unsqueeze":
            axes = x[1] if len(x) > 1 and x[1] is not None else attrs["axes"]
            out = x[0]
            for a in sorted(int(v) for v in np.array(axes).reshape(-1)):
                out = np.expand_dims(out, a)
        elif op == "Squeeze":
            axes = x[1] if len(x) > 1 and x[1] is not None else attrs.get("axes")
            out = np.squeeze(x[0], axis=None if axes is None else tuple(int(v) for v in np.array(axes).reshape(-1)))
        elif op == "Concat":
            out = np.concatenate([np.atleast_1d(v) for v in x], axis=attrs["axis"])
        elif op == "Cast":
            out = x[0].astype(np_dtype(attrs["to"]))
        elif op == "Slice":
            starts, ends = x[1], x[2]
            axes = x[3] if len(x) > 3 and x[3] is not None else range(len(starts))
            steps = x[4] if len(x) > 4 and x[4] is not None else [1] * len(starts)
            index = [slice(None)] * x[0].ndim
            for s, e, a, st in zip(starts, ends, axes, steps):
                index[int(a)] = slice(int(s), int(e), int(st))
            out = x[0][tuple(index)]
        elif op == "Sqrt":
            out = np.sqrt(x[0])
        elif op == "Reciprocal":
            out = (1.0 / x[0]).astype(x[0].dtype)
        elif op == "Pow":
            out = np.power(x[0], x[1]).astype(x[0].dtype)
        elif op == "ConstantOfShape":
            value = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
            out = np.full([int(v) for v in x[0]], value.reshape(-1)[0], dtype=value.dtype)
        else:
            raise NotImplementedError(op)
        values[node.output[0]] = out
    return values[sink]


def np_dtype(onnx_type: int):
    to_np = getattr(helper, "tensor_dtype_to_np_dtype", None)  # onnx ≥ 1.13; older: the mapping table
    return to_np(onnx_type) if to_np else onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[onnx_type]


def attention(q, k, v, heads, scale):
    b, s, hidden = q.shape
    d = hidden // heads
    split = lambda t: t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(0, 2, 1, 3)
    scores = np.matmul(split(q), split(k).transpose(0, 1, 3, 2)) * scale
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    o = np.matmul(p, split(v))
    return o.transpose(0, 2, 1, 3).reshape(b, s, -1)


def find_blocks(graph: Graph, log):
    blocks = []
    for softmax in [n for n in graph.g.node if n.op_type == "Softmax"]:
        axis = next((helper.get_attribute_value(a) for a in softmax.attribute if a.name == "axis"), -1)
        score_chain, score_scale = [], []
        top = walk_up(graph, softmax.input[0], score_chain, score_scale)
        if any(n.op_type in PASS_THROUGH for n in score_chain):
            continue
        product = graph.producer.get(top)
        probabilities = softmax.output[0]
        users = graph.consumers.get(probabilities, [])
        if len(users) == 1 and users[0].op_type == "Cast" and is_float_cast(users[0]):
            probabilities = users[0].output[0]
            users = graph.consumers.get(probabilities, [])
        if product is None or product.op_type != "MatMul" or len(users) != 1 or users[0].op_type != "MatMul" or users[0].input[0] != probabilities:
            continue
        weighted = users[0]
        q_chain, q_scale, k_chain, k_scale, v_chain = [], [], [], [], []
        q = walk_up(graph, product.input[0], q_chain, q_scale)
        k = walk_up(graph, product.input[1], k_chain, k_scale)
        v = walk_up(graph, weighted.input[1], v_chain, [])
        sink = weighted.output[0]
        while True:
            # Shape readers (reshape targets computed from this tensor's shape) belong to the block.
            after = [n for n in graph.consumers.get(sink, []) if n.op_type != "Shape"]
            if len(after) != 1 or after[0].op_type not in PASS_THROUGH or after[0].input[0] != sink:
                break
            sink = after[0].output[0]
        hd = heads_of(graph, q_chain)
        q_in, k_in, v_in = projection(graph, q), projection(graph, k), projection(graph, v)
        if hd is None or sink == weighted.output[0] or q == k or None in (q_in, k_in, v_in):
            log(f"  {softmax.name}: not a recognisable multi-head block, left alone")
            continue
        heads = hd[0]
        hidden = q_in[2]
        head_size = hidden // heads
        if heads <= 0 or hidden % heads or k_in[2] != hidden or v_in[2] != hidden:
            log(f"  {softmax.name}: {heads} heads do not divide the projections' widths, left alone")
            continue
        factors = score_scale + q_scale + k_scale
        # Constants give the scale; a scale computed from shapes (torch 2's default) is 1/√head_size.
        scale = float(np.prod(factors)) if factors and None not in factors else 1.0 / np.sqrt(head_size) if None in factors else 1.0
        nodes, outer = collect(graph, sink, {q, k, v})
        if nodes is None or not outer <= {q_in[0], k_in[0], v_in[0]}:
            log(f"  {softmax.name}: block reads other tensors ({sorted(outer) if outer else 'a graph input'}), left alone")
            continue
        rng = np.random.default_rng(0)
        self_attention = q_in[0] == k_in[0]
        ok = True
        # Two sizes, so a block whose reshapes hard-code one size is not taken for a general one.
        for batch, s_len, kv_len in ((2, 6, 5), (1, 9, 3)):
            kv_len = s_len if self_attention else kv_len
            feeds = {q: rng.standard_normal((batch, s_len, hidden)).astype(np.float32),
                     k: rng.standard_normal((batch, kv_len, hidden)).astype(np.float32),
                     v: rng.standard_normal((batch, kv_len, hidden)).astype(np.float32)}
            # The block's inputs, of which only the shapes are read.
            shapes = {q_in[0]: (batch, s_len, q_in[1]), k_in[0]: (batch, kv_len, k_in[1]), v_in[0]: (batch, kv_len, v_in[1])}
            for name in outer:
                feeds[name] = np.zeros(shapes[name], np.float32)
            try:
                got = evaluate(graph, nodes, feeds, sink)
            except (NotImplementedError, ValueError, KeyError, TypeError, IndexError) as e:
                log(f"  {softmax.name}: could not evaluate the block ({type(e).__name__}: {e}), left alone")
                ok = False
                break
            want = attention(feeds[q], feeds[k], feeds[v], heads, scale)
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
                log(f"  {softmax.name}: the block is not plain multi-head attention (masked or rearranged), left alone")
                ok = False
                break
        if ok:
            blocks.append((softmax.name, q, k, v, sink, heads, scale))
    return blocks


def fuse(model: onnx.ModelProto, log) -> int:
    graph = Graph(model)
    blocks = find_blocks(graph, log)
    if not blocks:
        return 0
    sinks = {}
    for name, q, k, v, sink, heads, scale in blocks:
        sinks[sink] = helper.make_node("MultiHeadAttention", [q, k, v], [sink], name=f"{name}/MultiHeadAttention",
                                       domain="com.microsoft", num_heads=heads, scale=scale)
    nodes = []
    for node in graph.g.node:
        if node.output and node.output[0] in sinks:
            nodes.append(sinks.pop(node.output[0]))  # the fused node takes the place of the block's last node
        else:
            nodes.append(node)
    del graph.g.node[:]
    graph.g.node.extend(nodes)
    remove_dead(model)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(blocks)


def remove_dead(model: onnx.ModelProto):
    g = model.graph
    while True:
        used = {o.name for o in g.output}
        for n in g.node:
            used.update(n.input)
        keep = [n for n in g.node if any(o in used for o in n.output)]
        if len(keep) == len(g.node):
            break
        del g.node[:]
        g.node.extend(keep)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def copy_folder(source: Path, target: Path):
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if relative.parts[0] == "unet" or path.is_dir():
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)
    unet_config = source / "unet" / "config.json"
    if unet_config.exists():
        (target / "unet").mkdir(parents=True, exist_ok=True)
        shutil.copy2(unet_config, target / "unet" / "config.json")


def save(model: onnx.ModelProto, target: Path):
    """Writes the model; weights over protobuf's 2 GB limit go to one model.onnx_data beside it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    weights = sum(len(t.raw_data) or t.ByteSize() for t in model.graph.initializer)
    if weights > 1_900_000_000:
        onnx.save(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="model.onnx_data", size_threshold=1024)
    else:
        onnx.save(model, str(target))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="model folder (diffusers/optimum ONNX layout)")
    parser.add_argument("--out", required=True, type=Path, help="new folder for the fused copy (must not exist)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    log = (lambda _: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    source = args.model / "unet" / "model.onnx"
    if not source.is_file():
        print(f"error: {source} does not exist (expected a diffusers/optimum ONNX model folder)", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"error: {args.out} exists; give a new folder (the tool never overwrites)", file=sys.stderr)
        return 2
    if args.out.resolve() == args.model.resolve():
        print("error: --out must differ from --model", file=sys.stderr)
        return 2
    model = onnx.load(str(source))
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        print(f"error: {source} holds float16 weights; ONNX Runtime's CPU MultiHeadAttention takes float32 (fuse the fp32 export)", file=sys.stderr)
        return 2
    count = fuse(model, log)
    if count == 0:
        print(f"error: no attention block in {source} could be fused; nothing written", file=sys.stderr)
        return 1
    copy_folder(args.model, args.out)
    target = args.out / "unet" / "model.onnx"
    save(model, target)
    log(f"fused {count} attention blocks → {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
