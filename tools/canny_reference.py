#!/usr/bin/env python3
"""Reference edges for the engine's Canny preprocessor (src/LocalDiffusion/ControlNet/CannyEdges.cs), computed with numpy
from the algorithm's definition, independently of the C# code (array slicing instead of per-pixel loops, iterative
dilation instead of a flood fill):

  1. optional Gaussian blur: separable kernel exp(-i²/2σ²), radius ceil(3σ), normalised, border replicated (float32);
  2. 3×3 Sobel per RGB channel on the 0–255 values, border replicated: gx = [-1 0 1; -2 0 2; -1 0 1], gy its transpose;
  3. per pixel the channel with the largest |gx| + |gy| (the first on ties); magnitude m = |gx| + |gy| (OpenCV's L1 norm);
  4. non-maximum suppression (OpenCV's sectors and tie rules): |gy| < |gx|·tan22.5° → compare left/right, keep if
     m > left and m >= right; |gy| > |gx|·tan67.5° → up/down, m > up and m >= down; otherwise the diagonal along the
     gradient ((x−1,y−1),(x+1,y+1) when gx and gy have the same sign, else (x+1,y−1),(x−1,y+1)), strictly on both sides;
     neighbours outside the image count as 0; only m > low is a candidate;
  5. hysteresis: candidates with m > high are edges, and candidates 8-connected to edges through candidates.

A1111's ControlNet canny module calls OpenCV's cv2.Canny(image, 100, 200) (no blur); these are its defaults.

    /usr/bin/python3 tools/canny_reference.py
writes tests/LocalDiffusion.Tests/TestData/ControlNet/canny_reference.json: per case the RGB8 input (base64), size,
thresholds, sigma and the edge pixel indices (y·width + x).
"""
import base64
import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "LocalDiffusion.Tests" / "TestData" / "ControlNet" / "canny_reference.json"
TAN22 = np.float32(0.41421356)
TAN67 = np.float32(2.41421356)


def blur(plane: np.ndarray, sigma: float) -> np.ndarray:
    radius = math.ceil(3 * sigma)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets.astype(np.float32) ** 2) / np.float32(2 * sigma * sigma)).astype(np.float32)
    kernel /= kernel.sum(dtype=np.float32)
    padded = np.pad(plane, ((0, 0), (radius, radius)), mode="edge")
    across = sum(kernel[k] * padded[:, k:k + plane.shape[1]] for k in range(len(kernel))).astype(np.float32)
    padded = np.pad(across, ((radius, radius), (0, 0)), mode="edge")
    return sum(kernel[k] * padded[k:k + plane.shape[0], :] for k in range(len(kernel))).astype(np.float32)


def canny(rgb: np.ndarray, low: float, high: float, sigma: float = 0.0) -> np.ndarray:
    h, w, _ = rgb.shape
    planes = [rgb[..., c].astype(np.float32) for c in range(3)]
    if sigma > 0:
        planes = [blur(p, sigma) for p in planes]
    gxs, gys = [], []
    for p in planes:
        q = np.pad(p, 1, mode="edge")
        gx = (q[:-2, 2:] - q[:-2, :-2]) + 2 * (q[1:-1, 2:] - q[1:-1, :-2]) + (q[2:, 2:] - q[2:, :-2])
        gy = (q[2:, :-2] - q[:-2, :-2]) + 2 * (q[2:, 1:-1] - q[:-2, 1:-1]) + (q[2:, 2:] - q[:-2, 2:])
        gxs.append(gx)
        gys.append(gy)
    gx, gy = np.stack(gxs), np.stack(gys)
    norms = np.abs(gx) + np.abs(gy)
    best = np.argmax(norms, axis=0)  # the first maximum on ties
    pick = lambda a: np.take_along_axis(a, best[None], axis=0)[0]
    gx, gy, m = pick(gx), pick(gy), pick(norms)
    z = np.pad(m, 1, mode="constant")  # neighbours outside are 0

    def at(dy, dx):
        return z[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    ax, ay = np.abs(gx), np.abs(gy)
    horizontal = ay < ax * TAN22
    vertical = ay > ax * TAN67
    same = (gx < 0) == (gy < 0)
    keep_h = (m > at(0, -1)) & (m >= at(0, 1))
    keep_v = (m > at(-1, 0)) & (m >= at(1, 0))
    keep_d = np.where(same, (m > at(-1, -1)) & (m > at(1, 1)), (m > at(-1, 1)) & (m > at(1, -1)))
    keep = np.where(horizontal, keep_h, np.where(vertical, keep_v, keep_d))
    candidate = keep & (m > low)
    edge = candidate & (m > high)
    while True:
        grown = np.pad(edge, 1)
        near = np.zeros_like(edge)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= grown[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        new = candidate & near
        if (new == edge).all():
            return edge
        edge = new


def shapes() -> np.ndarray:
    h, w = 48, 64
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = (30, 60, 90)
    rgb[8:28, 10:30] = (200, 40, 40)
    y, x = np.mgrid[0:h, 0:w]
    rgb[(x - 44) ** 2 + (y - 30) ** 2 <= 100] = (20, 220, 120)
    return rgb


def noisy() -> np.ndarray:
    h, w = 40, 56
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    base = 2.0 * x + 3.0 * y + 40.0 * np.sin(x / 5.0) * c + 60.0 * ((x - 28) ** 2 + (y - 20) ** 2 < 120)
    noise = np.random.default_rng(1234).normal(0, 12, size=base.shape)
    return np.clip(np.round(base + noise), 0, 255).astype(np.uint8)


def main() -> None:
    cases = []
    for name, rgb, low, high, sigma in [("shapes", shapes(), 100, 200, 0.0), ("noisy", noisy(), 100, 200, 0.0),
                                        ("noisy_low", noisy(), 30, 90, 0.0), ("noisy_blur", noisy(), 40, 120, 1.4)]:
        edges = canny(rgb, low, high, sigma)
        cases.append({"name": name, "width": rgb.shape[1], "height": rgb.shape[0], "low": low, "high": high, "sigma": sigma,
                      "rgb": base64.b64encode(rgb.tobytes()).decode(), "edges": [int(i) for i in np.flatnonzero(edges)]})
        print(f"{name}: {int(edges.sum())} edge pixels of {edges.size}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": "tools/canny_reference.py", "cases": cases}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
