"""The shapes world: scene sampling, caption templates and an analytic renderer.

A scene is one or two flat-coloured shapes on a flat background. Every scene keeps a structured record
(shape, colour, size, position of each object; background) next to its caption, so evaluation can check a
generated picture against what was asked. Rendering is vectorised torch (signed-distance style inside tests,
2x2 supersampled for anti-aliased edges) and runs the same on CPU and GPU.
"""
from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

# Named colours (sRGB 0-255). Foreground and background share the palette; an object never matches its background.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (245, 215, 35),
    "orange": (245, 135, 25),
    "purple": (135, 55, 175),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "pink": (245, 140, 190),
    "gray": (128, 128, 128),
}
COLOR_NAMES = list(COLORS)
SHAPES = ["circle", "square", "triangle", "star", "cross"]
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "cross": "crosses"}
# Object half-extent as a fraction of the image side.
SIZES = {"small": 0.10, "medium": 0.15, "large": 0.21}
# Position name -> centre (x, y) as fractions of the image side (y grows downwards).
EDGE = 0.27
POSITIONS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "left": (EDGE, 0.5),
    "right": (1 - EDGE, 0.5),
    "top": (0.5, EDGE),
    "bottom": (0.5, 1 - EDGE),
    "top left": (EDGE, EDGE),
    "top right": (1 - EDGE, EDGE),
    "bottom left": (EDGE, 1 - EDGE),
    "bottom right": (1 - EDGE, 1 - EDGE),
}
PAIR_POSITIONS = [("left", "right"), ("top", "bottom"), ("top left", "bottom right"), ("top right", "bottom left")]

# Shape geometry constants; the C# analyser (src/LocalDiffusion.Benchmarking/Evaluation) draws its templates from the same numbers.
SQUARE_HALF = 0.85      # square half-side / r
CROSS_ARM = 0.34        # cross arm half-width / r
STAR_INNER = 0.5        # star inner radius / outer radius
COLOR_JITTER = 12       # +- per channel
POSITION_JITTER = 0.04  # +- of the image side
SIZE_JITTER = 0.1       # +- relative


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def position_phrase(rng: random.Random, pos: str) -> str:
    if pos == "center":
        return rng.choice(["in the center", "in the middle", "at the center"])
    if pos in ("left", "right"):
        return rng.choice([f"on the {pos}", f"at the {pos}", f"on the {pos} side"])
    if pos in ("top", "bottom"):
        return rng.choice([f"at the {pos}", f"at the {pos} of the image"])
    return rng.choice([f"at the {pos}", f"in the {pos} corner", f"in the {pos}"])


def sample_scene(rng: random.Random) -> dict:
    """A random scene record: background plus one or two objects, with jittered geometry and colour."""
    bg = rng.choice(COLOR_NAMES)
    if rng.random() < 0.7:
        slots = [(rng.choice(list(POSITIONS)), rng.choice(list(SIZES)))]
    else:
        pair = list(rng.choice(PAIR_POSITIONS))
        slots = [(pair[0], rng.choice(["small", "medium"])), (pair[1], rng.choice(["small", "medium"]))]
    objects = []
    for pos, size in slots:
        color = rng.choice([c for c in COLOR_NAMES if c != bg])
        cx, cy = POSITIONS[pos]
        objects.append({
            "shape": rng.choice(SHAPES), "color": color, "size": size, "position": pos,
            "cx": cx + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
            "cy": cy + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
            "r": SIZES[size] * (1 + rng.uniform(-SIZE_JITTER, SIZE_JITTER)),
            "rgb": [min(255, max(0, v + rng.randint(-COLOR_JITTER, COLOR_JITTER))) for v in COLORS[color]],
        })
    if len(objects) == 2 and rng.random() < 0.3:
        objects[1]["shape"] = objects[0]["shape"]  # "two squares, one green and one yellow"
    bg_rgb = [min(255, max(0, v + rng.randint(-COLOR_JITTER, COLOR_JITTER))) for v in COLORS[bg]]
    scene = {"background": bg, "bg_rgb": bg_rgb, "objects": objects}
    scene["caption"] = caption(rng, scene)
    return scene


def _object_phrase(rng: random.Random, obj: dict, with_size: bool) -> str:
    words = ([obj["size"]] if with_size else []) + [obj["color"], obj["shape"]]
    return with_article(" ".join(words))


def caption(rng: random.Random, scene: dict) -> str:
    """A caption from one of several templates; size, position and background are sometimes left out."""
    bg, objects = scene["background"], scene["objects"]
    say_bg = rng.random() < 0.85
    if len(objects) == 1:
        obj = objects[0]
        thing = _object_phrase(rng, obj, rng.random() < 0.5)
        where = position_phrase(rng, obj["position"]) if rng.random() < 0.85 else ""
        bare = f"{obj['color']} {obj['shape']}"
        choices = [
            lambda: " ".join(filter(None, [thing, where, f"on {with_article(bg + ' background')}" if say_bg else ""])),
            lambda: f"{bg} background with {thing}" + (f" {where}" if where else "") if say_bg else " ".join(filter(None, [thing, where])),
            lambda: ", ".join(filter(None, [bare, where, f"{bg} background" if say_bg else ""])),
            lambda: f"an image of {thing}" + (f" {where}" if where else "") + (f" on {with_article(bg + ' background')}" if say_bg else ""),
            lambda: (f"{with_article(bg + ' background')}, {thing}" if say_bg else thing) + (f" {where}" if where else ""),
        ]
        return rng.choice(choices)()
    first, second = objects  # first is the left / top one
    tail = f" on {with_article(bg + ' background')}" if say_bg else ""
    if first["shape"] == second["shape"] and rng.random() < 0.7:
        return f"two {PLURALS[first['shape']]}, one {first['color']} and one {second['color']}" + (f", {bg} background" if say_bg else "")
    a, b = _object_phrase(rng, first, False), _object_phrase(rng, second, False)
    if rng.random() < 0.5:
        return f"{a} and {b}{tail}"
    pa, pb = position_phrase(rng, first["position"]), position_phrase(rng, second["position"])
    if rng.random() < 0.5:
        return f"{a} {pa} and {b} {pb}{tail}"
    return f"{b} {pb} and {a} {pa}{tail}"


def _inside(shape_ids: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Inside test for every object: dx, dy [..., H, W] offsets from the centre; shape_ids and r broadcast."""
    ax, ay = dx.abs(), dy.abs()
    circle = dx * dx + dy * dy <= r * r
    square = torch.maximum(ax, ay) <= SQUARE_HALF * r
    triangle = (dy <= r) & (ax <= (dy + r) / 2)       # apex at (0, -r), base from (-r, r) to (r, r)
    arm = CROSS_ARM * r
    cross = ((ax <= arm) & (ay <= r)) | ((ay <= arm) & (ax <= r))
    # Star: fold the angle (0 = up) into [0, 36 deg]; inside when on the origin's side of the outer-inner edge.
    dist = torch.sqrt(dx * dx + dy * dy)
    theta = torch.atan2(dx, -dy)
    sector = 2 * math.pi / 5
    phi = torch.abs(torch.remainder(theta + sector / 2, sector) - sector / 2)
    px, py = dist * torch.cos(phi), dist * torch.sin(phi)
    ox, oy = r, torch.zeros_like(r)
    ix, iy = STAR_INNER * r * math.cos(sector / 2), STAR_INNER * r * math.sin(sector / 2)
    edge_x, edge_y = ix - ox, iy - oy
    star = (edge_x * (py - oy) - edge_y * (px - ox)) * (edge_x * (0 - oy) - edge_y * (0 - ox)) >= 0
    masks = torch.stack([circle, square, triangle, star, cross])  # [5, ...]
    return torch.gather(masks, 0, shape_ids.expand_as(circle).unsqueeze(0)).squeeze(0)


def render(scenes: list[dict], size: int, device: str | torch.device = "cpu", supersample: int = 2) -> torch.Tensor:
    """Render scene records to a float tensor [B, 3, size, size] in [-1, 1]."""
    n = len(scenes)
    hi = size * supersample
    coords = (torch.arange(hi, device=device, dtype=torch.float32) + 0.5) / hi
    gy, gx = coords.view(1, hi, 1), coords.view(1, 1, hi)
    image = torch.tensor([s["bg_rgb"] for s in scenes], device=device, dtype=torch.float32).view(n, 3, 1, 1) / 255
    image = image.expand(n, 3, hi, hi).clone()
    for slot in range(2):
        present = [len(s["objects"]) > slot for s in scenes]
        if not any(present):
            continue
        objs = [s["objects"][slot] if p else s["objects"][0] for s, p in zip(scenes, present)]
        shape_ids = torch.tensor([SHAPES.index(o["shape"]) for o in objs], device=device).view(n, 1, 1)
        cx = torch.tensor([o["cx"] for o in objs], device=device).view(n, 1, 1)
        cy = torch.tensor([o["cy"] for o in objs], device=device).view(n, 1, 1)
        r = torch.tensor([o["r"] for o in objs], device=device).view(n, 1, 1)
        mask = _inside(shape_ids, gx - cx, gy - cy, r) & torch.tensor(present, device=device).view(n, 1, 1)
        rgb = torch.tensor([o["rgb"] for o in objs], device=device, dtype=torch.float32).view(n, 3, 1, 1) / 255
        image = torch.where(mask.unsqueeze(1), rgb, image)
    if supersample > 1:
        image = F.avg_pool2d(image, supersample)
    return image * 2 - 1


# Tight bounding box of each shape (x0, x1, y0, y1) in units of r, centred on the object's centre.
SHAPE_BOUNDS = {
    "circle": (-1.0, 1.0, -1.0, 1.0),
    "square": (-SQUARE_HALF, SQUARE_HALF, -SQUARE_HALF, SQUARE_HALF),
    "triangle": (-1.0, 1.0, -1.0, 1.0),
    "star": (-math.sin(2 * math.pi / 5), math.sin(2 * math.pi / 5), -1.0, -math.cos(4 * math.pi / 5)),
    "cross": (-1.0, 1.0, -1.0, 1.0),
}


def shape_template(shape: str, grid: int) -> torch.Tensor:
    """The shape's mask over its tight bounding box, sampled at grid x grid cell centres (for the analyser)."""
    x0, x1, y0, y1 = SHAPE_BOUNDS[shape]
    cells = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    xs = (x0 + cells * (x1 - x0)).view(1, grid)
    ys = (y0 + cells * (y1 - y0)).view(grid, 1)
    one = torch.ones(1, 1, dtype=torch.float64)
    return _inside(torch.tensor(SHAPES.index(shape)).view(1, 1), xs, ys, one).float()
