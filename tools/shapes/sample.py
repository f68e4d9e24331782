#!/usr/bin/env python3
"""Sample the trained shapes model in PyTorch the way the C# engine does, score it, and draw a sample grid.

    sample.py --ckpt DIR [--steps 20] [--guidance 7.5] [--scheduler dpm|euler] [--grid PNG]

Engine conventions: embeddings [uncond(""), cond]; latents = torch.randn([1,4,h,w], Generator("cpu").manual_seed(seed))
x init_noise_sigma; guided eps = uncond + g (cond - uncond) (g <= 1: cond only); decode latents / scaling_factor;
image = clamp(x / 2 + 0.5, 0, 1) -> RGB8. Schedulers follow diffusers' EulerDiscreteScheduler and
DPMSolverMultistepScheduler (dpmsolver++, order 2) with timestep_spacing "linspace".
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analyse import analyse, score  # noqa: E402
from clip_bpe import ClipBpe  # noqa: E402
from models import TextConfig, TextEncoder, UNet, UNetConfig, VaeConfig, VaeDecoder, load_half  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


class Model:
    """The trained networks loaded from train.py's checkpoints (fp16 state dicts, run in fp32)."""

    def __init__(self, ckpt: Path, tokenizer: Path, device: str = "cpu"):
        cfg = json.loads((ckpt / "config.json").read_text())
        self.cfg = cfg
        self.device = torch.device(device)
        self.tokenizer = ClipBpe(tokenizer)
        vae = torch.load(ckpt / "vae.pt", map_location="cpu")
        nets = torch.load(ckpt / "unet.pt", map_location="cpu")
        self.decoder = VaeDecoder(VaeConfig(**{**cfg["vae"], "channels": tuple(cfg["vae"]["channels"])}))
        self.text = TextEncoder(TextConfig(**cfg["text"]))
        ucfg = {**cfg["unet"], "channels": tuple(cfg["unet"]["channels"]), "attention": tuple(cfg["unet"]["attention"])}
        self.unet = UNet(UNetConfig(**ucfg))
        for net, state in ((self.decoder, vae["decoder"]), (self.text, nets["text_encoder"]), (self.unet, nets["unet"])):
            load_half(net, state).to(self.device).eval()
        self.scaling_factor = float(vae["scaling_factor"])
        betas = torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, cfg["train_steps"], dtype=torch.float64) ** 2
        self.alphas_cumprod = torch.cumprod(1 - betas, 0).numpy()
        self.latent_size = cfg["image_size"] // 8

    @torch.no_grad()
    def embed(self, prompts: list[str]) -> torch.Tensor:
        ids = torch.tensor([self.tokenizer.ids77(p) for p in prompts], dtype=torch.int32, device=self.device)
        return self.text(ids)[0]

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], steps: int = 20, guidance: float = 7.5,
                 scheduler: str = "dpm", batch: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(prompts), batch):
            out.append(self._generate(prompts[i:i + batch], seeds[i:i + batch], steps, guidance, scheduler))
        return np.concatenate(out)

    def _generate(self, prompts, seeds, steps, guidance, scheduler) -> np.ndarray:
        n, h = len(prompts), self.latent_size
        cond = self.embed(prompts)
        uncond = self.embed([""]).expand_as(cond)
        sched = (EulerDiscrete if scheduler == "euler" else DpmSolverMultistep)(self.alphas_cumprod, steps)
        noise = torch.cat([torch.randn([1, 4, h, h], generator=torch.Generator("cpu").manual_seed(s)) for s in seeds])
        x = noise.double().numpy() * sched.init_noise_sigma
        for i, t in enumerate(sched.timesteps):
            model_in = torch.from_numpy(sched.scale_model_input(x, i)).float().to(self.device)
            ts = torch.full((n,), float(t), device=self.device)
            if guidance > 1:
                eps = self.unet(torch.cat([model_in, model_in]), torch.cat([ts, ts]), torch.cat([uncond, cond]))
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
            else:
                eps = self.unet(model_in, ts, cond)
            x = sched.step(eps.double().cpu().numpy(), i, x)
        image = self.decoder(torch.from_numpy(x / self.scaling_factor).float().to(self.device))
        image = ((image / 2 + 0.5).clamp(0, 1) * 255).round().byte()
        return image.permute(0, 2, 3, 1).cpu().numpy()


def _sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


class EulerDiscrete:
    """diffusers EulerDiscreteScheduler, epsilon, timestep_spacing linspace, linear sigma interpolation."""

    def __init__(self, alphas_cumprod: np.ndarray, steps: int):
        T = len(alphas_cumprod)
        self.timesteps = np.linspace(0, T - 1, steps)[::-1].copy()
        sig = np.interp(self.timesteps, np.arange(T), _sigmas(alphas_cumprod))
        self.sigmas = np.concatenate([sig, [0.0]])
        self.init_noise_sigma = float(self.sigmas.max())  # linspace spacing: sigma_max itself

    def scale_model_input(self, x: np.ndarray, i: int) -> np.ndarray:
        return x / (self.sigmas[i] ** 2 + 1) ** 0.5

    def step(self, eps: np.ndarray, i: int, x: np.ndarray) -> np.ndarray:
        return x + (self.sigmas[i + 1] - self.sigmas[i]) * eps


class DpmSolverMultistep:
    """diffusers DPMSolverMultistepScheduler: dpmsolver++, solver_order 2, midpoint, lower_order_final,
    final_sigmas_type zero, timestep_spacing linspace (integer timesteps)."""

    def __init__(self, alphas_cumprod: np.ndarray, steps: int):
        T = len(alphas_cumprod)
        self.timesteps = np.linspace(0, T - 1, steps + 1).round()[::-1][:-1].astype(np.int64)
        sig = np.interp(self.timesteps, np.arange(T), _sigmas(alphas_cumprod))
        self.sigmas = np.concatenate([sig, [0.0]])
        self.init_noise_sigma = 1.0
        self.previous: np.ndarray | None = None

    def scale_model_input(self, x: np.ndarray, i: int) -> np.ndarray:
        return x

    @staticmethod
    def _alpha_sigma(sigma: float) -> tuple[float, float]:
        alpha = 1 / (sigma ** 2 + 1) ** 0.5
        return alpha, sigma * alpha

    def step(self, eps: np.ndarray, i: int, x: np.ndarray) -> np.ndarray:
        alpha_s, sigma_s = self._alpha_sigma(self.sigmas[i])
        x0 = (x - sigma_s * eps) / alpha_s
        alpha_t, sigma_t = self._alpha_sigma(self.sigmas[i + 1])
        last = i == len(self.timesteps) - 1
        if sigma_t == 0:
            out = x0  # the final step to sigma 0 lands on the data prediction
        else:
            lam_s, lam_t = np.log(alpha_s / sigma_s), np.log(alpha_t / sigma_t)
            h = lam_t - lam_s
            out = (sigma_t / sigma_s) * x - alpha_t * np.expm1(-h) * x0
            if self.previous is not None and not last:
                alpha_p, sigma_p = self._alpha_sigma(self.sigmas[i - 1])
                r0 = (lam_s - np.log(alpha_p / sigma_p)) / h
                d1 = (x0 - self.previous) / r0
                out = out - 0.5 * alpha_t * np.expm1(-h) * d1
        self.previous = x0
        return out


def evaluate(model: Model, cases: list[dict], steps: int, guidance: float, scheduler: str) -> tuple[dict, np.ndarray, list[dict]]:
    images = model.generate([c["prompt"] for c in cases], [c["seed"] for c in cases], steps, guidance, scheduler)
    results = [analyse(img) for img in images]
    return score(cases, results), images, results


def grid(images: np.ndarray, columns: int) -> np.ndarray:
    rows = [np.concatenate(list(images[i:i + columns]), axis=1) for i in range(0, len(images), columns)]
    return np.concatenate(rows, axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--tokenizer", default=str(REPO / "models" / "shapes" / "tokenizer"))
    parser.add_argument("--cases", default=str(REPO / "models" / "shapes" / "eval_prompts.json"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, nargs="+", default=[7.5, 1.0])
    parser.add_argument("--scheduler", nargs="+", default=["dpm", "euler"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--grid", help="write a PNG grid: of --grid-prompt pictures, else of the first 12 eval pictures")
    parser.add_argument("--grid-prompt", action="append", default=[], help="a prompt for the grid (seed = its index)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = Model(Path(args.ckpt), Path(args.tokenizer), args.device)
    if args.grid and args.grid_prompt:
        from PIL import Image
        prompts = args.grid_prompt
        images = model.generate(prompts, list(range(len(prompts))), args.steps, args.guidance[0], args.scheduler[0])
        Image.fromarray(grid(images, min(6, len(prompts)))).save(args.grid)
        return 0
    cases = json.loads(Path(args.cases).read_text())["cases"]
    for scheduler in args.scheduler:
        for g in args.guidance:
            t0 = time.time()
            scores, images, results = evaluate(model, cases, args.steps, g, scheduler)
            figures = "  ".join(f"{k} {v:.0%}" for k, v in scores.items())
            print(f"{scheduler:5s} steps {args.steps} guidance {g:4.1f}: {figures}   ({time.time() - t0:.0f}s)", flush=True)
            if args.verbose:
                for c, r in zip(cases, results):
                    bad = [k for k in ("color", "background", "shape", "position") if c[k] != r[k]]
                    if bad:
                        print(f"   {c['prompt']!r} seed {c['seed']}: " + ", ".join(f"{k} {r[k]} (want {c[k]})" for k in bad))
            if args.grid and scheduler == args.scheduler[0] and g == args.guidance[0]:
                from PIL import Image
                Image.fromarray(grid(images[:12], 6)).save(args.grid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
