"""The three networks of the shapes model, with Stable Diffusion's component interfaces.

- AutoencoderKL-style VAE: 3 downsamplings (8x), 4 latent channels; the encoder returns mean and logvar.
- CLIP-architecture text encoder: token + position embeddings, pre-LN causal transformer, quick-GELU MLPs,
  final LayerNorm; pooler_output is the hidden state at the first end-of-text token (the highest id).
- UNet: ResNet blocks with timestep embeddings, spatial transformers (self-attention, cross-attention on the
  text encoder's hidden states, GEGLU feed-forward) at the coarser levels, skip connections as in SD.
Written to export with torch.onnx.export on torch 1.13 and to train on torch 1.13 and 2.x.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VaeConfig:
    channels: tuple = (32, 64, 96, 128)   # at 1x, 2x, 4x, 8x downsampling
    latent_channels: int = 4
    groups: int = 8


@dataclass
class TextConfig:
    vocab_size: int = 1000
    width: int = 192
    layers: int = 3
    heads: int = 4
    max_positions: int = 77


@dataclass
class UNetConfig:
    channels: tuple = (64, 128, 192)
    attention: tuple = (False, True, True)  # spatial transformer per level (the middle block always has one)
    head_dim: int = 32
    ff_mult: int = 2
    context_dim: int = 192
    groups: int = 32
    time_dim: int = 256
    coordinates: bool = False  # two extra input channels with pixel coordinates


def cpu_training(x: torch.Tensor) -> bool:
    """Whether x flows through a CPU training step: there Debian's torch (no optimised BLAS) runs matrix products
    far faster as oneDNN convolutions. Inference and ONNX export keep the plain ops."""
    return x.device.type == "cpu" and torch.is_grad_enabled()


class Dense(nn.Linear):
    """nn.Linear that trains through a 1x1 convolution on CPU (see cpu_training)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not cpu_training(x) or x.dim() != 3:
            return F.linear(x, self.weight, self.bias)
        b, n, c = x.shape
        y = F.conv2d(x.reshape(b * n, c, 1, 1), self.weight[:, :, None, None], self.bias)
        return y.reshape(b, n, -1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int, time_dim: int = 0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out) if time_dim else None
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time is not None:
            h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# ---------------------------------------------------------------------------------------------------- VAE

class VaeEncoder(nn.Module):
    def __init__(self, cfg: VaeConfig):
        super().__init__()
        c = cfg.channels
        self.conv_in = nn.Conv2d(3, c[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i in range(len(c)):
            blocks.append(ResBlock(c[i - 1] if i else c[0], c[i], cfg.groups))
            if i < len(c) - 1:
                blocks.append(Downsample(c[i], c[i]))
        blocks.append(ResBlock(c[-1], c[-1], cfg.groups))
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = nn.GroupNorm(cfg.groups, c[-1])
        self.conv_out = nn.Conv2d(c[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        """Image [B,3,H,W] in [-1,1] -> latent parameters [B,8,H/8,W/8] (mean, logvar)."""
        h = self.conv_in(sample)
        for block in self.blocks:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VaeDecoder(nn.Module):
    def __init__(self, cfg: VaeConfig):
        super().__init__()
        c = cfg.channels[::-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, c[0], 3, padding=1)
        blocks: list[nn.Module] = [ResBlock(c[0], c[0], cfg.groups), ResBlock(c[0], c[0], cfg.groups)]
        for i in range(1, len(c)):
            blocks += [Upsample(c[i - 1], c[i]), ResBlock(c[i], c[i], cfg.groups)]
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = nn.GroupNorm(cfg.groups, c[-1])
        self.conv_out = nn.Conv2d(c[-1], 3, 3, padding=1)

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        """Latents [B,4,h,w] (unscaled) -> image [B,3,8h,8w] in about [-1,1]."""
        h = self.conv_in(latent_sample)
        for block in self.blocks:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------------------------------- attention

def batched_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [..., M, K] @ b [..., K, N]. Training on CPU runs it as a grouped 1x1 convolution, one group per leading
    index: torch 1.13's CPU bmm took 60 % of a text-encoder step; oneDNN's grouped convolution is ~4x faster."""
    if not cpu_training(a):
        return torch.matmul(a, b)
    *lead, m, k = a.shape
    n = b.shape[-1]
    g = math.prod(lead)
    return F.conv1d(b.reshape(1, g * k, n), a.reshape(g * m, k, 1), groups=g).reshape(*lead, m, n)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head scaled dot-product attention on [B, N, C] tensors (explicit ops: exports to plain ONNX)."""
    b, n, c = q.shape
    d = c // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, k.shape[1], heads, d).transpose(1, 2)
    v = v.reshape(b, v.shape[1], heads, d).transpose(1, 2)
    scores = batched_matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
    if mask is not None:
        scores = scores + mask
    out = batched_matmul(scores.softmax(dim=-1), v)
    return out.transpose(1, 2).reshape(b, n, c)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int | None = None, bias: bool = False):
        super().__init__()
        context_dim = context_dim or dim
        self.heads = heads
        self.q = Dense(dim, dim, bias=bias)
        self.k = Dense(context_dim, dim, bias=bias)
        self.v = Dense(context_dim, dim, bias=bias)
        self.out = Dense(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        return self.out(attention(self.q(x), self.k(context), self.v(context), self.heads, mask))


# ---------------------------------------------------------------------------------------------------- text encoder

class ClipLayer(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, bias=True)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = Dense(width, 4 * width)
        self.fc2 = Dense(4 * width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask=mask)
        h = self.fc1(self.ln2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))  # quick GELU, as CLIP


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.position_embedding = nn.Parameter(torch.zeros(cfg.max_positions, cfg.width))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)
        self.layers = nn.ModuleList(ClipLayer(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.final_ln = nn.LayerNorm(cfg.width)
        n = cfg.max_positions
        self.register_buffer("causal_mask", torch.full((n, n), -1e9).triu(1), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids [B,77] -> (last_hidden_state [B,77,D], pooler_output [B,D])."""
        ids = input_ids.long()
        x = self.token_embedding(ids) + self.position_embedding
        for layer in self.layers:
            x = layer(x, self.causal_mask)
        x = self.final_ln(x)
        eos = ids.float().argmax(dim=-1)  # end-of-text is the highest id: its first occurrence
        pooled = x[torch.arange(x.shape[0], device=x.device), eos]
        return x, pooled


# ---------------------------------------------------------------------------------------------------- UNet

class SpatialTransformer(nn.Module):
    def __init__(self, channels: int, heads: int, context_dim: int, groups: int, ff_mult: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.proj_in = Dense(channels, channels)
        self.ln1 = nn.LayerNorm(channels)
        self.self_attn = Attention(channels, heads)
        self.ln2 = nn.LayerNorm(channels)
        self.cross_attn = Attention(channels, heads, context_dim)
        self.ln3 = nn.LayerNorm(channels)
        self.ff_in = Dense(channels, 2 * ff_mult * channels)  # GEGLU: value and gate
        self.ff_out = Dense(ff_mult * channels, channels)
        self.proj_out = Dense(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x).reshape(b, c, h * w).transpose(1, 2))
        t = t + self.self_attn(self.ln1(t))
        t = t + self.cross_attn(self.ln2(t), context)
        value, gate = self.ff_in(self.ln3(t)).chunk(2, dim=-1)
        t = t + self.ff_out(value * F.gelu(gate))
        t = self.proj_out(t).transpose(1, 2).reshape(b, c, h, w)
        return x + t


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [cos, sin] of (possibly fractional) timesteps [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000.0) / half))
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def coordinates(x: torch.Tensor) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1] as two channels [B, 2, h, w] (x then y), from tensor ops only so the
    ONNX graph keeps dynamic spatial sizes. They tell every layer where it is: "on the left" becomes learnable."""
    ones = torch.ones_like(x[:, :2])
    index_x, index_y = ones[:, :1].cumsum(dim=3), ones[:, 1:].cumsum(dim=2)
    cx = (index_x - 0.5) / index_x[:, :, :, -1:] * 2 - 1
    cy = (index_y - 0.5) / index_y[:, :, -1:, :] * 2 - 1
    return torch.cat([cx, cy], dim=1)


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig, in_channels: int = 4):
        super().__init__()
        ch, g, td = cfg.channels, cfg.groups, cfg.time_dim
        self.base = ch[0]
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], td), nn.SiLU(), nn.Linear(td, td))
        self.coordinates = cfg.coordinates
        self.conv_in = nn.Conv2d(in_channels + 2 * cfg.coordinates, ch[0], 3, padding=1)

        def transformer(c: int) -> SpatialTransformer:
            return SpatialTransformer(c, c // cfg.head_dim, cfg.context_dim, g, cfg.ff_mult)

        self.down = nn.ModuleList()
        skips = [ch[0]]
        prev = ch[0]
        for i, c in enumerate(ch):
            level = nn.ModuleDict({"res": ResBlock(prev, c, g, td)})
            if cfg.attention[i]:
                level["attn"] = transformer(c)
            if i < len(ch) - 1:
                level["down"] = Downsample(c, c)
            self.down.append(level)
            skips.append(c)
            if i < len(ch) - 1:
                skips.append(c)
            prev = c
        self.mid_res1 = ResBlock(prev, prev, g, td)
        self.mid_attn = transformer(prev)
        self.mid_res2 = ResBlock(prev, prev, g, td)

        self.up = nn.ModuleList()
        for i in reversed(range(len(ch))):
            c = ch[i]
            blocks = nn.ModuleList()
            for _ in range(2):
                block = nn.ModuleDict({"res": ResBlock(prev + skips.pop(), c, g, td)})
                if cfg.attention[i]:
                    block["attn"] = transformer(c)
                blocks.append(block)
                prev = c
            level = nn.ModuleDict({"blocks": blocks})
            if i > 0:
                level["up"] = Upsample(c, c)
            self.up.append(level)
        self.norm_out = nn.GroupNorm(g, ch[0])
        self.conv_out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """sample [B,4,h,w], timestep [B], encoder_hidden_states [B,77,D] -> predicted noise [B,4,h,w]."""
        temb = self.time_mlp(timestep_embedding(timestep, self.base))
        h = self.conv_in(torch.cat([sample, coordinates(sample)], dim=1) if self.coordinates else sample)
        skips = [h]
        for level in self.down:
            h = level["res"](h, temb)
            if "attn" in level:
                h = level["attn"](h, encoder_hidden_states)
            skips.append(h)
            if "down" in level:
                h = level["down"](h)
                skips.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb), encoder_hidden_states), temb)
        for level in self.up:
            for block in level["blocks"]:
                h = block["res"](torch.cat([h, skips.pop()], dim=1), temb)
                if "attn" in block:
                    h = block["attn"](h, encoder_hidden_states)
            if "up" in level:
                h = level["up"](h)
        return self.conv_out(F.silu(self.norm_out(h)))


def load_half(module: nn.Module, state: dict) -> nn.Module:
    """Loads a checkpoint's fp16 state dict (train.py saves them so) into the fp32 module."""
    module.load_state_dict({k: v.float() for k, v in state.items()})
    return module


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
