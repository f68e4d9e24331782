"""Draw models/shapes/samples.png with the C# engine itself (the picture the README shows).

    /usr/bin/python3 tools/shapes/engine_samples.py [--out models/shapes/samples.png]

Runs `localdiffusion generate` (through `dotnet run`) once per prompt below, seed = 1, default settings
(20 steps, guidance 7.5, the model's DPM++ 2M), and pastes the pictures into a 4x2 grid with PIL (pictures
smaller than 128 px enlarged by whole pixels, nearest neighbour, so the grid shows what the engine drew).
"""
import argparse
import pathlib
import subprocess
import tempfile

from PIL import Image

PROMPTS = [
    "a red circle on a blue background",
    "a yellow star on a purple background",
    "blue background with a small red circle at the top left",
    "a large green triangle in the center on a white background",
    "a black cross on the right on an orange background",
    "a pink square at the bottom on a gray background",
    "two squares, one green and one yellow, black background",
    "a white circle and a red star on a blue background",
]

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "models/shapes/samples.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tiles = []
        for i, prompt in enumerate(PROMPTS):
            path = pathlib.Path(tmp) / f"{i}.png"
            subprocess.run(["dotnet", "run", "--project", str(ROOT / "src/LocalDiffusion.Cli"), "-c", "Release", "--",
                            "generate", "--prompt", prompt, "--seed", "1", "--out", str(path)], check=True, cwd=ROOT)
            tiles.append(Image.open(path).convert("RGB"))
    factor = max(1, 128 // tiles[0].width)
    tiles = [tile.resize((tile.width * factor, tile.height * factor), Image.NEAREST) for tile in tiles]
    w, h = tiles[0].size
    grid = Image.new("RGB", (4 * w, 2 * h))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % 4) * w, (i // 4) * h))
    grid.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
