#!/usr/bin/python3
"""Writes tests/LocalDiffusion.Tests/TestData/Randomness/torch_randn.json: float32 torch.randn values, as hex bit
patterns, from torch.Generator("cpu").manual_seed(seed), for the TorchGenerator tests.

Run with Debian's torch (python3-torch): /usr/bin/python3 tools/torch_rng_reference.py
The numbers must come from torch's AVX2 normal kernel (the x86 path TorchGenerator reproduces); the script refuses
to write them when torch reports another CPU capability (set ATEN_CPU_CAPABILITY=avx2 on AVX-512 machines whose
torch build would otherwise pick its AVX-512 kernels, which fall back to scalar libm float math).
"""
import hashlib
import json
import os
import struct
import sys

import torch

SEEDS = [0, 1, 42, 2**32 + 7, -5, 0xFFFFFFFF]
SIZES = [1, 2, 3, 15, 16, 17, 31, 32, 100, 4 * 8 * 8, 1 * 4 * 64 * 64]
# Sizes stored in full; larger ones keep their first and last EDGE values and a SHA-256 of all of them.
FULL_LIMIT = 256
EDGE = 64
# Consecutive draws on one generator: the stream must continue across calls, including the cached second value of
# the double Box-Muller pair that draws of fewer than 16 values leave behind.
SEQUENCES = [
    (42, [4 * 16 * 16, 4 * 16 * 16]),
    (0, [3, 5, 20]),
    (1, [1, 16, 1, 17, 2]),
    (7, [15, 33, 3]),
]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "LocalDiffusion.Tests", "TestData",
                   "Randomness", "torch_randn.json")


def cpu_capability():
    config = torch.__config__.show()
    for line in config.splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    raise SystemExit("torch.__config__.show() does not report the CPU capability")


def hex_bits(values):
    return ["%08x" % struct.unpack("<I", struct.pack("<f", v))[0] for v in values]


def draw(values):
    bits = hex_bits(values.tolist())
    if len(bits) <= FULL_LIMIT:
        return {"count": len(bits), "bits": bits}
    digest = hashlib.sha256(values.numpy().astype("<f4").tobytes()).hexdigest()
    return {"count": len(bits), "first": bits[:EDGE], "last": bits[-EDGE:], "sha256": digest}


def main():
    capability = cpu_capability()
    if capability != "AVX2":
        raise SystemExit(f"torch runs its {capability} kernels; TorchGenerator reproduces the AVX2 ones")
    single = []
    for seed in SEEDS:
        for size in SIZES:
            generator = torch.Generator("cpu").manual_seed(seed)
            single.append({"seed": seed, **draw(torch.randn(size, generator=generator))})
    sequences = []
    for seed, sizes in SEQUENCES:
        generator = torch.Generator("cpu").manual_seed(seed)
        sequences.append({"seed": seed, "draws": [draw(torch.randn(size, generator=generator)) for size in sizes]})
    document = {
        "source": "tools/torch_rng_reference.py",
        "torch_version": torch.__version__,
        "cpu_capability": capability,
        "kernel": "normal_fill_AVX2 (avx_mathfun.h log256_ps/sincos256_ps) for n >= 16; "
                  "double normal_distribution with cached second value for n < 16",
        "single": single,
        "sequences": sequences,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
