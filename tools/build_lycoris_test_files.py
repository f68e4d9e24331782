#!/usr/bin/env python3
"""Build LyCORIS LoHa and LoKr files for models/test/tiny's UNet, and the weight changes torch computes from them.

Writes (seeded, float32, byte-identical on rebuild):
  models/test/lora/lycoris_loha.safetensors   kohya-style keys lora_unet_<module>.hada_w1_a/.hada_w1_b/.hada_w2_a/.hada_w2_b
                                              and .alpha, as LyCORIS saves LoHa: a linear layer (cross.q) and a 3×3 conv
                                              (res_high.conv1, hada_w*_b [r, in, 3, 3])
  models/test/lora/lycoris_lokr.safetensors   .lokr_w1 / .lokr_w1_a+.lokr_w1_b and .lokr_w2 / .lokr_w2_a+.lokr_w2_b with .alpha:
                                              cross.k (w1 whole, w2 decomposed), cross.v (w1 decomposed, w2 whole) and the
                                              3×3 conv res_high.conv2 (both whole: no alpha scaling, its alpha is ignored)
  tests/LocalDiffusion.Tests/TestData/Adapters/lycoris_deltas.json
      each module's ΔW in torch's [out, in(, kh, kw)] layout, as AUTOMATIC1111's built-in Lora extension computes it
      (network_hada.py / network_lokr.py, checked against KohakuBlueleaf/LyCORIS's loha.py / lokr.py):
        LoHa: (w1a @ w1b) * (w2a @ w2b) * alpha / w1b.shape[0]
        LoKr: torch.kron(w1, w2) (conv: kron(w1[:, :, None, None], w2)) * alpha / dim when a factor is decomposed
              (dim = lokr_w2_b rows, else lokr_w1_b rows), unscaled when both are whole.

    /usr/bin/python3 tools/build_lycoris_test_files.py    (under a second)
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_lora_test_files import write_safetensors  # noqa: E402

SEED = 20261207
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "models" / "test" / "lora"
TESTDATA = ROOT / "tests" / "LocalDiffusion.Tests" / "TestData" / "Adapters" / "lycoris_deltas.json"


def loha(gen, out_f, in_shape, rank, alpha):
    def r(*shape):
        return torch.randn(*shape, generator=gen) * 0.3
    w1a, w1b, w2a, w2b = r(out_f, rank), r(rank, *in_shape), r(out_f, rank), r(rank, *in_shape)
    shape = (out_f, *in_shape)
    delta = ((w1a @ w1b.reshape(rank, -1)) * (w2a @ w2b.reshape(rank, -1))).reshape(shape) * (alpha / rank)
    return {"hada_w1_a": w1a, "hada_w1_b": w1b, "hada_w2_a": w2a, "hada_w2_b": w2b, "alpha": torch.tensor(alpha)}, delta


def lokr(gen, shape, w1, w2, alpha):
    """w1/w2: ("whole", rows, cols) or ("split", rows, rank, cols); shape: the module weight's shape."""
    def r(*s):
        return torch.randn(*s, generator=gen) * 0.3
    tensors, dim = {}, None
    if w1[0] == "whole":
        tensors["lokr_w1"] = r(w1[1], w1[2])
        f1 = tensors["lokr_w1"]
    else:
        tensors["lokr_w1_a"], tensors["lokr_w1_b"] = r(w1[1], w1[2]), r(w1[2], w1[3])
        f1, dim = tensors["lokr_w1_a"] @ tensors["lokr_w1_b"], w1[2]
    if w2[0] == "whole":
        tensors["lokr_w2"] = r(*w2[1:])
        f2 = tensors["lokr_w2"]
    else:
        tensors["lokr_w2_a"], tensors["lokr_w2_b"] = r(w2[1], w2[2]), r(w2[2], w2[3])
        f2, dim = tensors["lokr_w2_a"] @ tensors["lokr_w2_b"], w2[2]
    tensors["alpha"] = torch.tensor(alpha)
    if len(shape) == 4:
        f1 = f1[:, :, None, None]
    delta = torch.kron(f1, f2).reshape(shape) * (alpha / dim if dim is not None else 1.0)
    return tensors, delta


def main() -> int:
    gen = torch.Generator().manual_seed(SEED)
    deltas, loha_file, lokr_file = {}, {}, {}

    def add(into, module, tensors, delta):
        for part, t in tensors.items():
            into[f"lora_unet_{module.replace('.', '_')}.{part}"] = t
        deltas[module] = {"shape": list(delta.shape), "delta": [float(f"{v:.9g}") for v in delta.reshape(-1).tolist()]}

    add(loha_file, "cross.q", *loha(gen, 32, (32,), 4, 2.0))
    add(loha_file, "res_high.conv1", *loha(gen, 32, (32, 3, 3), 2, 1.0))
    add(lokr_file, "cross.k", *lokr(gen, (32, 32), ("whole", 4, 4), ("split", 8, 2, 8), 1.0))
    add(lokr_file, "cross.v", *lokr(gen, (32, 32), ("split", 4, 2, 4), ("whole", 8, 8), 4.0))
    add(lokr_file, "res_high.conv2", *lokr(gen, (32, 32, 3, 3), ("whole", 4, 4), ("whole", 8, 8, 3, 3), 7.0))
    write_safetensors(OUT / "lycoris_loha.safetensors", loha_file, "F32", {"ss_network_module": "lycoris.kohya", "ss_network_args": '{"algo": "loha"}'})
    write_safetensors(OUT / "lycoris_lokr.safetensors", lokr_file, "F32", {"ss_network_module": "lycoris.kohya", "ss_network_args": '{"algo": "lokr"}'})
    TESTDATA.write_text(json.dumps({"source": "tools/build_lycoris_test_files.py (torch, A1111's LoHa/LoKr formulas)", "modules": deltas}) + "\n")
    print(f"wrote {OUT}/lycoris_*.safetensors and {TESTDATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
