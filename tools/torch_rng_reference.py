#!/usr/bin/python3
"""Writes tests/LocalDiffusion.Tests/TestData/Randomness/torch_randn.json: float32 torch.randn values, as hex bit
patterns, from torch.Generator("cpu").manual_seed(seed), for the TorchGenerator tests.

Run with Debian's torch (python3-torch) on an x86 machine with AVX2: /usr/bin/python3 tools/torch_rng_reference.py
Torch picks its normal kernel by the CPU capability it dispatches to, so the numbers are drawn twice, each time in a
child process with ATEN_CPU_CAPABILITY set: "avx2" (normal_fill_AVX2, the vectorised Cephes float math) and "default"
(normal_fill, scalar libm float math; also what torch's AVX-512 kernels run). The script checks that torch reports
the capability asked for before it keeps the numbers.
"""
import hashlib
import json
import os
import re
import struct
import subprocess
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
# ATEN_CPU_CAPABILITY value -> what torch.__config__.show() then reports as "CPU capability usage".
CAPABILITIES = {"avx2": "AVX2", "default": "NO AVX"}
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


def compact_bit_lists(text):
    """Puts each list of hex bit patterns on one line, which keeps the file small and still diffable."""
    return re.sub(r'\[\s+("[0-9a-f]{8}"(?:,\s+"[0-9a-f]{8}")*)\s+\]',
                  lambda match: "[" + re.sub(r",\s+", ", ", match.group(1)) + "]", text)


def draws():
    """All draws, on the kernel this process runs; printed as JSON for the parent process."""
    single = []
    for seed in SEEDS:
        for size in SIZES:
            generator = torch.Generator("cpu").manual_seed(seed)
            single.append({"seed": seed, **draw(torch.randn(size, generator=generator))})
    sequences = []
    for seed, sizes in SEQUENCES:
        generator = torch.Generator("cpu").manual_seed(seed)
        sequences.append({"seed": seed, "draws": [draw(torch.randn(size, generator=generator)) for size in sizes]})
    return {"cpu_capability": cpu_capability(), "single": single, "sequences": sequences}


def run_child(capability):
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], env=env, check=True,
                            capture_output=True, text=True)
    kernel = json.loads(result.stdout)
    if kernel["cpu_capability"] != CAPABILITIES[capability]:
        raise SystemExit(f"ATEN_CPU_CAPABILITY={capability}: torch runs {kernel['cpu_capability']} kernels, "
                         f"expected {CAPABILITIES[capability]}")
    return kernel


def main():
    if sys.argv[1:] == ["--child"]:
        json.dump(draws(), sys.stdout)
        return
    document = {
        "source": "tools/torch_rng_reference.py",
        "torch_version": torch.__version__,
        "kernels": {capability: run_child(capability) for capability in CAPABILITIES},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(compact_bit_lists(json.dumps(document, indent=1)) + "\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
