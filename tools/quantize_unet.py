#!/usr/bin/env python3
"""Dynamic int8 quantisation of a UNet export's MatMul weights, as an opt-in: smaller and faster, at a measured cost.

Every MatMul whose second input is a constant 2-D weight [K, N] (the UNet's linear layers: attention projections,
feed-forward, time embedding) becomes ONNX Runtime's contrib com.microsoft.DynamicQuantizeMatMul: the weight is
stored as int8 with one scale per output column (symmetric, zero point 0: scale_n = max|W[:, n]| / 127), and the
activations are quantised to uint8 per call by ONNX Runtime itself. Convolutions, attention scores (activation ×
activation) and everything else stay float32. This is what ONNX Runtime's quantize_dynamic with per-channel weights
and its DynamicQuantizeMatMul fusion produce for MatMuls; that package cannot be installed here, so this needs only
Debian's python3-onnx and python3-numpy.

    python3 tools/quantize_unet.py --model sd15-onnx --out sd15-onnx-int8 [--min-elements 4096]

writes a copy of the model folder (other components hard-linked, else copied; weights over 2 GB in one
unet/model.onnx_data) and never touches the source. Float32 computation only (weights may be stored as float16 and
cast, as the shapes model stores them). The quality cost is measured, not assumed:
see benchmarks/README.md ("int8") for PSNR against the fp32 model's pictures.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from fuse_attention import copy_folder, remove_dead, save


def quantize(model: onnx.ModelProto, min_elements: int, log) -> tuple[int, int, int]:
    g = model.graph
    initializers = {t.name: t for t in g.initializer}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    producer = {o: n for n in g.node for o in n.output}
    nodes, new_initializers, count, before, after = [], [], 0, 0, 0
    done: dict[str, tuple[str, str, str]] = {}
    for node in g.node:
        weight = None
        if node.op_type == "MatMul" and len(node.input) == 2:
            weight = initializers.get(node.input[1])
            cast = producer.get(node.input[1])
            # Weights stored as float16 and cast to float32 in the graph (as the shipped shapes model keeps them).
            if weight is None and cast is not None and cast.op_type == "Cast" and cast.input[0] in initializers:
                weight = initializers[cast.input[0]]
        if weight is None or len(weight.dims) != 2 or weight.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) \
                or weight.dims[0] * weight.dims[1] < min_elements:
            nodes.append(node)
            continue
        if weight.name in done:  # one weight read by several MatMuls: quantised once
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], *done[weight.name]], list(node.output),
                                          name=f"{node.name}/DynamicQuantizeMatMul", domain="com.microsoft"))
            count += 1
            continue
        w = numpy_helper.to_array(weight).astype(np.float32)
        scale = np.abs(w).max(axis=0) / 127.0
        scale[scale == 0] = 1.0  # an all-zero column: any scale gives zeros
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        base = weight.name
        names = (f"{base}_int8", f"{base}_scale", f"{base}_zero_point")
        done[weight.name] = names
        new_initializers += [numpy_helper.from_array(q, names[0]),
                             numpy_helper.from_array(scale.astype(np.float32), names[1]),
                             numpy_helper.from_array(np.zeros(w.shape[1], np.int8), names[2])]
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], *names], list(node.output),
                                      name=f"{node.name}/DynamicQuantizeMatMul", domain="com.microsoft"))
        count += 1
        before += w.nbytes
        after += q.nbytes + 2 * 4 * w.shape[1]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_initializers)
    remove_dead(model)  # the float weights no node reads any more
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    log(f"quantised {count} MatMul weights: {before / 2**20:.0f} MiB → {after / 2**20:.0f} MiB")
    return count, before, after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="model folder (diffusers/optimum ONNX layout)")
    parser.add_argument("--out", required=True, type=Path, help="new folder for the quantised copy (must not exist)")
    parser.add_argument("--min-elements", type=int, default=4096, help="leave weights smaller than this float32")
    args = parser.parse_args()
    log = lambda m: print(m, file=sys.stderr)
    source = args.model / "unet" / "model.onnx"
    if not source.is_file():
        log(f"error: {source} does not exist (expected a diffusers/optimum ONNX model folder)")
        return 2
    if args.out.exists() or args.out.resolve() == args.model.resolve():
        log(f"error: {args.out} exists; give a new folder (the tool never overwrites)")
        return 2
    model = onnx.load(str(source))
    count, _, _ = quantize(model, args.min_elements, log)
    if count == 0:
        log(f"error: no MatMul with a constant weight in {source}; nothing written")
        return 1
    copy_folder(args.model, args.out)
    save(model, args.out / "unet" / "model.onnx")
    log(f"→ {args.out / 'unet' / 'model.onnx'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
