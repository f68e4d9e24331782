#!/usr/bin/env python3
"""Train the shapes model: the VAE first, then the text encoder and UNet jointly on the VAE's latents.

    train.py --out DIR [--device cpu|cuda] [--stage vae|unet|finetune|all] [--profile cpu2h|gpu128] [--bench N]

Everything is drawn from TrainConfig.seed (scenes, captions, noise, initialisation). The same config runs on a
2-core CPU (torch 1.13) and on a GPU (torch 2.x). Checkpoints (fp16 state dicts) are written to DIR as it goes:
vae.pt, unet.pt (text encoder + UNet, EMA weights) and config.json; --stage unet reuses DIR/vae.pt. A profile with
finetune_steps then continues from those EMA weights (kept as unet_base.pt) in a second phase; --stage finetune runs
that phase alone. --bench N times N steps of each stage and prints seconds per step and the extrapolated total
instead of training.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from clip_bpe import ClipBpe  # noqa: E402
from models import (TextConfig, TextEncoder, UNet, UNetConfig, VaeConfig, VaeDecoder, VaeEncoder, count_params,  # noqa: E402
                    load_half)
from world import caption, render, sample_scene  # noqa: E402


@dataclasses.dataclass
class TrainConfig:
    seed: int = 1234
    image_size: int = 128
    vae: VaeConfig = dataclasses.field(default_factory=lambda: VaeConfig(channels=(16, 32, 64, 128)))
    vae_steps: int = 2000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl: float = 1e-6
    vae_edge: float = 1.0
    vae_object_weight: float = 0.0  # extra reconstruction weight on object pixels (those unlike the background)
    latent_images: int = 50000
    text: TextConfig = dataclasses.field(default_factory=lambda: TextConfig(width=128, layers=3, heads=4))
    unet: UNetConfig = dataclasses.field(default_factory=lambda: UNetConfig(channels=(64, 96, 160), groups=32, context_dim=128, coordinates=True))
    unet_steps: int = 3600
    unet_batch: int = 256
    unet_lr: float = 6e-4
    warmup: int = 200
    ema: float = 0.999
    uncond_prob: float = 0.1
    loss_weight_cap: float = 0.0  # upper bound on the 1/alpha_bar loss weight (0: none)
    # Second UNet phase from the first phase's EMA weights: fresh AdamW, uncapped weight, new scenes and seed.
    finetune_steps: int = 0
    finetune_lr: float = 3e-4
    finetune_images: int = 20000
    finetune_seed: int = 777
    train_steps: int = 1000  # diffusion schedule: scaled_linear 0.00085 -> 0.012, as Stable Diffusion
    beta_start: float = 0.00085
    beta_end: float = 0.012


# Named configs. "cpu2h" is the recipe of models/shapes, sized for under 2 hours on the project's 2-core CPU (Debian
# torch 1.13): 64 px (latents 8x8, a quarter of the work of 128 px), small batches (on that CPU they run far faster
# per picture: the activations stay in cache), a narrow text encoder, a UNet 64 channels wide at its 8x8 level
# (where shape is drawn) and narrow below, the loss weight capped at 5 for 8000 steps (size and shape), then 1500
# uncapped steps (position). "gpu128" (the TrainConfig defaults) is the earlier 128-px recipe for a GPU (about
# 7 minutes on an H100, about 18 hours on that CPU). Measurements and scores of both: tools/README.md.
PROFILES: dict[str, dict] = {
    "cpu2h": {"image_size": 64, "vae_batch": 16, "vae_steps": 8000, "vae_object_weight": 8.0, "latent_images": 60000,
              "text": TextConfig(width=64, layers=3, heads=4),
              "unet": UNetConfig(channels=(64, 64, 96), attention=(True, True, True), groups=16, context_dim=64,
                                 coordinates=True),
              "unet_steps": 8000, "unet_batch": 64, "ema": 0.999, "loss_weight_cap": 5.0, "finetune_steps": 1500},
    "gpu128": {},
}


def alphas_cumprod(cfg: TrainConfig) -> torch.Tensor:
    betas = torch.linspace(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, cfg.train_steps, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def keep_freed_memory() -> None:
    """Stop glibc from handing freed memory back to the kernel after every step: re-faulting it in cost the 2-core
    CPU about half the time of encoding scenes (most of it in the kernel) and a tenth of a UNet step."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_top_pad, 256 << 20)
    libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's maximum: larger blocks are always mapped


def memory_format(device: torch.device) -> torch.memory_format:
    """Channels-last on the CPU, where oneDNN's convolutions run several times faster in it."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def half_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", torch.float16) for k, v in module.state_dict().items()}


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


class SceneStream:
    """Seeded scenes rendered in batches on the training device."""

    def __init__(self, seed: int, size: int, device: torch.device):
        self.rng = random.Random(seed)
        self.size, self.device = size, device

    def batch(self, n: int) -> tuple[list[dict], torch.Tensor]:
        scenes = [sample_scene(self.rng) for _ in range(n)]
        return scenes, render(scenes, self.size, self.device)


def reconstruction_loss(y: torch.Tensor, x: torch.Tensor, object_weight: float) -> torch.Tensor:
    """L1 + MSE, object pixels weighted 1 + object_weight. A small object is a few percent of the picture: with
    few training pictures an unweighted loss lets the decoder grey its colour out for little cost."""
    if not object_weight:
        return (y - x).abs().mean() + F.mse_loss(y, x)
    background = x.flatten(2).median(dim=2).values[:, :, None, None]  # the colour most pixels have
    weight = 1 + object_weight * ((x - background).abs().sum(dim=1, keepdim=True) > 0.1).float()
    return ((y - x).abs() * weight).mean() + ((y - x).pow(2) * weight).mean()


def edge_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients: keeps shape edges crisp where plain L1 would blur them."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return (dx(x) - dx(y)).abs().mean() + (dy(x) - dy(y)).abs().mean()


def train_vae(cfg: TrainConfig, device: torch.device, out: Path, bench: int = 0) -> tuple[VaeEncoder, float, float]:
    torch.manual_seed(cfg.seed)
    enc, dec = VaeEncoder(cfg.vae).to(device), VaeDecoder(cfg.vae).to(device)
    fmt = memory_format(device)
    enc, dec = enc.to(memory_format=fmt), dec.to(memory_format=fmt)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.vae_lr, weight_decay=0.0)
    stream = SceneStream(cfg.seed + 1, cfg.image_size, device)
    gen = torch.Generator(device).manual_seed(cfg.seed + 2)
    steps = bench or cfg.vae_steps
    print(f"VAE: encoder {count_params(enc):,} + decoder {count_params(dec):,} params, {steps} steps x {cfg.vae_batch}", flush=True)
    t0, c0 = time.time(), time.process_time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.vae_steps, cfg.vae_lr, cfg.warmup)
        x = stream.batch(cfg.vae_batch)[1].contiguous(memory_format=fmt)
        mean, logvar = enc(x).chunk(2, dim=1)
        logvar = logvar.clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen, device=device)
        y = dec(z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean()
        rec = reconstruction_loss(y, x, cfg.vae_object_weight)
        loss = rec + cfg.vae_edge * edge_loss(y, x) + cfg.vae_kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            psnr = 10 * math.log10(4 / F.mse_loss(y.detach(), x).item())
            print(f"  vae {step:5d}  loss {loss.item():.4f}  psnr {psnr:.1f} dB  kl {kl.item():.0f}  {time.time() - t0:.0f}s", flush=True)
    seconds, cpu = (time.time() - t0) / steps, (time.process_time() - c0) / steps
    enc.eval(), dec.eval()
    scale = latent_scale(cfg, enc, device)
    if not bench:
        torch.save({"encoder": half_state(enc), "decoder": half_state(dec), "scaling_factor": scale}, out / "vae.pt")
    print(f"VAE done: {seconds:.3f} s/step ({cpu:.3f} CPU s/step), scaling_factor {scale:.5f}", flush=True)
    return enc, scale, seconds


@torch.no_grad()
def latent_scale(cfg: TrainConfig, enc: VaeEncoder, device: torch.device) -> float:
    """1 / std of sampled latents over 512 fresh scenes (how SD's 0.18215 was found)."""
    stream = SceneStream(cfg.seed + 3, cfg.image_size, device)
    gen = torch.Generator(device).manual_seed(cfg.seed + 4)
    zs = []
    for _ in range(8):
        mean, logvar = enc(stream.batch(64)[1]).chunk(2, dim=1)
        zs.append(mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * torch.randn(mean.shape, generator=gen, device=device))
    return float(1 / torch.cat(zs).std())


@torch.no_grad()
def encode_dataset(cfg: TrainConfig, enc: VaeEncoder, device: torch.device, count: int) -> tuple[list[dict], torch.Tensor]:
    """Seeded scenes and their latent posteriors (mean, logvar) [N, 8, h, w], stored fp16 on the device."""
    stream = SceneStream(cfg.seed + 5, cfg.image_size, device)
    # Batches of 16 in channels-last: on the CPU, 64 at a time is several times slower per scene (cache).
    fmt = memory_format(device)
    enc = enc.to(memory_format=fmt)
    scenes, params = [], []
    for start in range(0, count, 16):
        batch, x = stream.batch(min(16, count - start))
        scenes += batch
        params.append(enc(x.contiguous(memory_format=fmt)).half().contiguous())
    return scenes, torch.cat(params)


def finetune_config(cfg: TrainConfig) -> TrainConfig:
    return dataclasses.replace(cfg, unet_steps=cfg.finetune_steps, latent_images=cfg.finetune_images,
                               seed=cfg.finetune_seed, loss_weight_cap=0.0)


def finetune_lr_at(cfg: TrainConfig):
    """The second phase's schedule: a 100-step linear warm-up times a cosine over the whole phase."""
    return lambda step: cfg.finetune_lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / cfg.finetune_steps))


def train_unet(cfg: TrainConfig, enc: VaeEncoder, scale: float, device: torch.device, out: Path, tokenizer: ClipBpe,
               bench: int = 0, init: dict | None = None, schedule=None) -> float:
    """Text encoder + UNet on the VAE's latents; from `init` (a unet.pt checkpoint) when given. `schedule(step)` is
    the learning rate (default: lr_at with the config's warm-up and cosine)."""
    torch.manual_seed(cfg.seed + 10)
    text_cfg = dataclasses.replace(cfg.text, vocab_size=len(tokenizer.vocab))
    te, unet = TextEncoder(text_cfg).to(device), UNet(cfg.unet).to(device)
    if init is not None:
        load_half(te, init["text_encoder"]), load_half(unet, init["unet"])
    fmt = memory_format(device)
    unet = unet.to(memory_format=fmt)
    ema_te, ema_unet = TextEncoder(text_cfg).to(device), UNet(cfg.unet).to(device)
    ema_te.load_state_dict(te.state_dict()), ema_unet.load_state_dict(unet.state_dict())
    ema_params = list(ema_te.parameters()) + list(ema_unet.parameters())
    params = list(te.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=0.01)
    steps = bench or cfg.unet_steps
    count = min(cfg.latent_images, bench * cfg.unet_batch) if bench else cfg.latent_images
    t0 = time.time()
    scenes, posteriors = encode_dataset(cfg, enc, device, count)
    encode_seconds = time.time() - t0
    print(f"encoded {count} scenes in {encode_seconds:.0f}s; text encoder {count_params(te):,}, UNet {count_params(unet):,} "
          f"params, {steps} steps x {cfg.unet_batch}", flush=True)
    ac = alphas_cumprod(cfg).to(device)
    rng = random.Random(cfg.seed + 11)
    gen = torch.Generator(device).manual_seed(cfg.seed + 12)
    empty = tokenizer.ids77("")
    token_cache: dict[str, list[int]] = {}

    def ids77(text: str) -> list[int]:
        if text not in token_cache:
            token_cache[text] = tokenizer.ids77(text)
        return token_cache[text]

    t0, c0 = time.time(), time.process_time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = schedule(step) if schedule else lr_at(step, cfg.unet_steps, cfg.unet_lr, cfg.warmup)
        idx = [rng.randrange(len(scenes)) for _ in range(cfg.unet_batch)]
        # A fresh caption each time a scene comes back: more wordings for the same picture.
        ids = [empty if rng.random() < cfg.uncond_prob else ids77(caption(rng, scenes[i])) for i in idx]
        ids = torch.tensor(ids, dtype=torch.int32, device=device)
        mean, logvar = posteriors[idx].float().chunk(2, dim=1)
        noise_z = torch.randn(mean.shape, generator=gen, device=device)
        x0 = (mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * noise_z) * scale
        t = torch.randint(0, cfg.train_steps, (len(idx),), generator=gen, device=device)
        eps = torch.randn(x0.shape, generator=gen, device=device)
        a = ac[t].view(-1, 1, 1, 1)
        xt = (a.sqrt() * x0 + (1 - a).sqrt() * eps).contiguous(memory_format=fmt)
        context, _ = te(ids)
        pred = unet(xt, t.float(), context)
        # Epsilon MSE weighted by 1 + 1/SNR = 1/alpha_bar, i.e. the v-prediction loss: the noisiest steps, where the
        # prompt alone must decide the layout, count as much as the rest (plain epsilon MSE all but ignores them
        # and the model then places objects wherever the initial noise leans).
        weight = 1 / a.view(-1)
        if cfg.loss_weight_cap:  # 1/alpha_bar reaches 215: uncapped, the noisiest steps dominate a batch of 64
            weight = weight.clamp(max=cfg.loss_weight_cap)
        loss = (weight * (pred.float() - eps).pow(2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema, (1 + step) / (10 + step))
            torch._foreach_mul_(ema_params, decay)
            torch._foreach_add_(ema_params, [p.detach() for p in params], alpha=1 - decay)
        if step % 100 == 0 or step == steps - 1:
            print(f"  unet {step:5d}  loss {loss.item():.4f}  lr {opt.param_groups[0]['lr']:.2e}  {time.time() - t0:.0f}s", flush=True)
        if not bench and (step % 500 == 499 or step == steps - 1):
            torch.save({"text_encoder": half_state(ema_te), "unet": half_state(ema_unet), "step": step + 1}, out / "unet.pt")
    seconds, cpu = (time.time() - t0) / steps, (time.process_time() - c0) / steps
    print(f"UNet done: {seconds:.3f} s/step ({cpu:.3f} CPU s/step) (+ {encode_seconds:.0f}s encoding {count} scenes)", flush=True)
    return seconds


def config_dict(cfg: TrainConfig, vocab_size: int) -> dict:
    d = dataclasses.asdict(cfg)
    d["text"]["vocab_size"] = vocab_size
    return d


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--tokenizer", default=str(Path(__file__).resolve().parents[2] / "models" / "shapes" / "tokenizer"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--stage", choices=["vae", "unet", "finetune", "all"], default="all")
    parser.add_argument("--bench", type=int, default=0, help="time this many steps per stage and extrapolate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", choices=list(PROFILES), default="cpu2h",
                        help="cpu2h: the recipe of models/shapes, under 2 h on 2 CPU cores; gpu128: 128 px, for a GPU")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="override TrainConfig fields on top of the profile (experiments and smoke tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # tiny values late in training must not fall onto the CPU's slow denormal path
    keep_freed_memory()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(TrainConfig(), **PROFILES[args.profile])
    for item in args.set:
        field, value = item.split("=", 1)
        cfg = dataclasses.replace(cfg, **{field: type(getattr(cfg, field))(value)})
    if args.stage == "finetune":
        if not cfg.finetune_steps:
            parser.error(f"--stage finetune: finetune_steps is 0 (profile {args.profile}, after --set): no second phase to run")
        if not (out / "unet_base.pt").exists() and not (out / "unet.pt").exists():
            parser.error(f"--stage finetune needs the first phase's weights: neither {out / 'unet_base.pt'} nor "
                         f"{out / 'unet.pt'} exists")
    tokenizer = ClipBpe(args.tokenizer)
    (out / "config.json").write_text(json.dumps(config_dict(cfg, len(tokenizer.vocab)), indent=2))
    print(f"torch {torch.__version__} on {device}, {torch.get_num_threads()} threads", flush=True)
    started = time.time()
    if args.stage in ("vae", "all"):
        enc, scale, vae_s = train_vae(cfg, device, out, args.bench)
    else:
        ckpt = torch.load(out / "vae.pt")
        enc = load_half(VaeEncoder(cfg.vae).to(device), ckpt["encoder"]).eval()
        scale, vae_s = ckpt["scaling_factor"], 0.0
    if args.stage in ("unet", "all"):
        t0 = time.time()
        unet_s = train_unet(cfg, enc, scale, device, out, tokenizer, args.bench)
        if args.bench:
            encode_scene = (time.time() - t0 - unet_s * args.bench) / min(cfg.latent_images, args.bench * cfg.unet_batch)
            encode_total = encode_scene * (cfg.latent_images + (cfg.finetune_images if cfg.finetune_steps else 0))
            unet_total = unet_s * (cfg.unet_steps + cfg.finetune_steps)
            total = vae_s * cfg.vae_steps + encode_total + unet_total
            print(f"extrapolated: VAE {vae_s * cfg.vae_steps / 60:.1f} min + encoding {encode_total / 60:.1f} min + "
                  f"UNet {unet_total / 60:.1f} min = {total / 60:.1f} min", flush=True)
    if cfg.finetune_steps and not args.bench and args.stage in ("unet", "finetune", "all"):
        base = out / "unet_base.pt"
        if args.stage != "finetune" or not base.exists():
            (out / "unet.pt").replace(base)
        fine = finetune_config(cfg)
        train_unet(fine, enc, scale, device, out, tokenizer, init=torch.load(base), schedule=finetune_lr_at(fine))
    print(f"total {time.time() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
