"""A simple picture analyser for the shapes world (the C# twin is src/LocalDiffusion.Benchmarking/Evaluation).

Each pixel is labelled with its nearest named colour; the background is the most common label on the 2-pixel
border; the object is the largest 4-connected region of other labels; its colour is the most common label in it;
its shape is the template (world.shape_template over the region's bounding box) with the highest IoU; its
position is where the bounding box centre falls in a 3 x 3 split at 0.39 / 0.61 of the side.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from world import COLOR_NAMES, COLORS, SHAPES, shape_template

GRID = 24
SPLIT = (0.39, 0.61)
_PALETTE = np.array([COLORS[c] for c in COLOR_NAMES], dtype=np.float32)
_TEMPLATES = {s: shape_template(s, GRID).numpy() > 0.5 for s in SHAPES}


def labels(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 -> [H, W] index of the nearest named colour."""
    d = ((rgb[:, :, None, :].astype(np.float32) - _PALETTE[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def largest_region(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        region, queue = [], deque([(y0, x0)])
        seen[y0, x0] = True
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        if len(region) > len(best):
            best = region
    out = np.zeros_like(mask, dtype=bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def position_name(cx: float, cy: float) -> str:
    col = "left" if cx < SPLIT[0] else "right" if cx > SPLIT[1] else ""
    row = "top" if cy < SPLIT[0] else "bottom" if cy > SPLIT[1] else ""
    return " ".join(filter(None, [row, col])) or "center"


def analyse(rgb: np.ndarray) -> dict:
    """Detected background, colour, shape and position of the main object in an RGB8 picture [H, W, 3]."""
    h, w, _ = rgb.shape
    lab = labels(rgb)
    border = np.concatenate([lab[:2].ravel(), lab[-2:].ravel(), lab[:, :2].ravel(), lab[:, -2:].ravel()])
    bg = int(np.bincount(border, minlength=len(COLOR_NAMES)).argmax())
    region = largest_region(lab != bg)
    if region.sum() < 4:
        return {"background": COLOR_NAMES[bg], "color": None, "shape": None, "position": None}
    color = int(np.bincount(lab[region], minlength=len(COLOR_NAMES)).argmax())
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cells = (np.arange(GRID) + 0.5) / GRID
    sample = region[(y0 + cells * (y1 - y0)).astype(int)][:, (x0 + cells * (x1 - x0)).astype(int)]
    ious = {s: (sample & t).sum() / max(1, (sample | t).sum()) for s, t in _TEMPLATES.items()}
    return {
        "background": COLOR_NAMES[bg],
        "color": COLOR_NAMES[color],
        "shape": max(ious, key=ious.get),
        "position": position_name((x0 + x1) / 2 / w, (y0 + y1) / 2 / h),
    }


def score(cases: list[dict], results: list[dict]) -> dict:
    """Fraction of cases whose detected attribute matches the expected one, per attribute."""
    keys = ["color", "background", "shape", "position"]
    return {k: sum(c[k] == r[k] for c, r in zip(cases, results)) / len(cases) for k in keys}
