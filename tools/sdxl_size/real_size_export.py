"""Helpers for exporting real-size random-weight models whose float32 weights do not fit twice in this machine's memory.

torch.onnx.export of a model holds its weights, the copies constant folding makes (every Linear's transposed weight)
and the serialised tensors: about twice the weights (7.3 GB for SD 2.1's 3.5 GB UNet), so SDXL's 10.3 GB UNet would
need about 21 GB. Here the model is built on torch's meta device (no memory), every parameter is
replaced by a zero-stride view of one float (the trace needs shapes and runnable ops, not values), torch writes the
export (each initializer in its own external file, one at a time: a model over 2 GB), and `randomize` then rewrites each
weight's file with seeded random values at PyTorch's default scale, one tensor at a time. Peak memory: a few hundred MB.
"""
import math
import os
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.overrides import TorchFunctionMode

FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.randn, torch.rand, torch.full}


class OnMeta(TorchFunctionMode):
    """Inside it, tensor factories without a device make meta tensors: a module's constructor allocates nothing."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


NORMS = (nn.GroupNorm, nn.LayerNorm)


def weight_scales(model: nn.Module, prefix: str = "") -> dict[str, tuple[str, float]]:
    """Parameter name -> (distribution, scale) of PyTorch's default initialisers: Linear and Conv weights and biases
    uniform(+-1/sqrt(fan_in)); Embeddings normal(0, 0.02) as CLIP initialises them (positions 0.01). Norms are left at
    at (about) weight 1, bias 0, what the zero-stride views already hold."""
    scales = {}
    for name, module in model.named_modules():
        full = prefix + name + ("." if name else "")
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            fan_in = module.weight.shape[1] * math.prod(module.weight.shape[2:])
            scales[full + "weight"] = ("uniform", 1 / math.sqrt(fan_in))
            if module.bias is not None:
                scales[full + "bias"] = ("uniform", 1 / math.sqrt(fan_in))
        elif isinstance(module, nn.Embedding):
            scales[full + "weight"] = ("normal", 0.01 if "position" in name else 0.02)
    return scales


def zero_stride_parameters(model: nn.Module) -> None:
    """Replaces every (meta) parameter by a zero-stride view of one float, a different one for each parameter: the
    exporter merges initializers of equal value, which would leave one tensor for all weights of a shape. Norms get
    1 + i * 2^-20 (weights) and i * 1e-9 (biases), close enough to PyTorch's 1 and 0; the others are overwritten."""
    index = 0
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is None:
                continue
            index += 1
            fill = 1.0 + index * 2.0 ** -20 if name == "weight" and isinstance(module, NORMS) else index * 1e-9
            module._parameters[name] = nn.Parameter(torch.full((), fill).expand(p.shape), requires_grad=False)
    for name, buffer in model.named_buffers():
        if buffer.is_meta:
            raise RuntimeError(f"buffer {name} was made on the meta device; it needs real values")


def _values(rng: np.random.Generator, kind: str, scale: float, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "normal":
        return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def randomize(model_path: Path, scales: dict[str, tuple[str, float]], seed: int) -> tuple[int, int]:
    """Writes seeded random values into every weight of an exported model: the parameters named in `scales`, and the
    2-D initializers constant folding made from Linear weights (a MatMul's second input, transposed: fan_in = rows).
    External tensors are rewritten in their own files; embedded ones in the proto. Returns (tensors, parameters)."""
    model = onnx.load(str(model_path), load_external_data=False)
    folder = model_path.parent
    matmul_b = {node.input[1] for node in model.graph.node if node.op_type == "MatMul"}
    changed_proto, tensors, params = False, 0, 0
    for index, init in enumerate(model.graph.initializer):
        shape = tuple(init.dims)
        if init.name in scales:
            kind, scale = scales[init.name]
        elif init.name in matmul_b and len(shape) == 2 and math.prod(shape) >= 4096:
            kind, scale = "uniform", 1 / math.sqrt(shape[0])
        else:
            continue
        if init.data_type != onnx.TensorProto.FLOAT:
            raise RuntimeError(f"{model_path}: initializer {init.name} is not float32")
        values = _values(np.random.default_rng([seed, index]), kind, scale, shape)
        if init.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in init.external_data}
            target = folder / info["location"]
            offset = int(info.get("offset", 0))
            if offset != 0 or target.stat().st_size != values.nbytes:
                raise RuntimeError(f"{target}: expected one tensor of {values.nbytes} bytes in its own file")
            with open(target, "r+b") as f:
                f.write(values.tobytes())
        else:
            init.CopyFrom(numpy_helper.from_array(values, init.name))
            changed_proto = True
        tensors += 1
        params += values.size
    if changed_proto:
        onnx.save(model, str(model_path))
    return tensors, params


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def link_tree(source: Path, target: Path) -> None:
    """Hard links (no second copy on disk) of every file of source under target, for components two folders share."""
    for path in source.rglob("*"):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                dest.unlink()
            os.link(path, dest)
