"""The tiny random-weight networks behind models/test/: Stable Diffusion's component interfaces, toy sizes.

Each network is small enough to ship in the repository yet behaves like the real component where an engine
can notice: the text encoder reads real CLIP ids and pools at the EOS position, the UNet's output depends on
the sample, the timestep and the prompt, and its noise prediction is consistent with the SD1.5 noise schedule
(it predicts the noise that would take the sample to a bounded, prompt-dependent x0), so any scheduler loop
stays finite and converges; the VAE decoder turns latents into images in about [-1, 1] that follow the
latents' spatial layout.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CLIP_VOCAB = 49408
SEQ_LEN = 77
TEXT_DIM = 32


class TextEncoder(nn.Module):
    """CLIP-like causal transformer; token embedding factorised as a[id % 256] + b[id // 256] to stay small."""

    def __init__(self, dim: int = TEXT_DIM, layers: int = 2, heads: int = 2):
        super().__init__()
        self.low = nn.Embedding(256, dim)
        self.high = nn.Embedding((CLIP_VOCAB + 255) // 256, dim)
        self.pos = nn.Parameter(torch.randn(SEQ_LEN, dim) * 0.5)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.register_buffer("causal", torch.full((SEQ_LEN, SEQ_LEN), -1e4).triu(1), persistent=False)

    def forward(self, input_ids: torch.Tensor):
        ids = input_ids.long()
        length = ids.shape[1]
        h = self.low(ids % 256) + self.high(torch.div(ids, 256, rounding_mode="floor")) + self.pos[:length]
        mask = self.causal[:length, :length]
        for block in self.blocks:
            h = block(h, mask)
        h = self.final_norm(h)
        # CLIP pools at the EOS token, found as the largest id (cast to int32 as CLIP's export does for argmax).
        eos = input_ids.to(torch.int32).argmax(dim=-1).long()
        pooled = torch.gather(h, 1, eos[:, None, None].expand(-1, 1, h.shape[2])).squeeze(1)
        return h, pooled


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, h, mask):
        x = self.norm1(h)
        h = h + self.attn(x, x, mask)
        x = self.fc1(self.norm2(h))
        return h + self.fc2(x * torch.sigmoid(1.702 * x))  # CLIP's quick_gelu


class Attention(nn.Module):
    """Multi-head attention of queries [B,N,dim] over a context [B,M,context_dim]."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(context_dim, dim)
        self.v = nn.Linear(context_dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x):
        return x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def forward(self, x, context, mask=None):
        q, k, v = self._split(self.q(x)), self._split(self.k(context)), self._split(self.v(context))
        scores = q @ k.transpose(2, 3) * self.scale
        if mask is not None:
            scores = scores + mask
        y = torch.softmax(scores, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(x.shape))


def alphas_cumprod_sd15() -> np.ndarray:
    """ᾱ of the SD1.5 schedule: scaled_linear betas 0.00085 -> 0.012 over 1000 steps (GUIDE §3)."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


class ResBlock(nn.Module):
    def __init__(self, channels: int, time_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.time = nn.Linear(time_dim, channels)
        self.norm2 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x))) + self.time(temb)[:, :, None, None]
        return x + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """One down/up level, time-conditioned res blocks and cross-attention on the text states.

    The net proposes a bounded x0 (3·tanh(raw/3)) and returns the epsilon that maps the sample to it at this
    timestep, eps = (x − √ᾱ·x0)/√(1−ᾱ), with ᾱ interpolated from the SD1.5 table at the (possibly
    fractional) timestep. The timestep may be a scalar, [1] or [B], of any numeric type.
    """

    def __init__(self, channels: int = 32, text_dim: int = TEXT_DIM, time_dim: int = 64):
        super().__init__()
        self.freqs_half = 16
        self.time_in = nn.Linear(2 * self.freqs_half, time_dim)
        self.time_out = nn.Linear(time_dim, time_dim)
        self.conv_in = nn.Conv2d(4, channels, 3, padding=1)
        self.res_high = ResBlock(channels, time_dim)
        self.down = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.res_low = ResBlock(channels, time_dim)
        self.attn_norm = nn.GroupNorm(8, channels)
        self.cross = Attention(channels, text_dim, heads=2)
        self.up = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.out_norm = nn.GroupNorm(8, channels)
        self.conv_out = nn.Conv2d(channels, 4, 3, padding=1)
        self.register_buffer("alphas", torch.tensor(alphas_cumprod_sd15(), dtype=torch.float32), persistent=False)

    def time_embedding(self, t):
        freqs = torch.exp(-math.log(10000.0) * torch.arange(self.freqs_half, dtype=torch.float32) / self.freqs_half)
        args = t[:, None] * freqs[None, :]
        emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
        return self.time_out(F.silu(self.time_in(emb)))

    def alpha_bar(self, t):
        t = t.clamp(0.0, 999.0)
        index = torch.floor(t).clamp(max=998.0)
        frac = t - index
        index = index.long()
        return self.alphas[index] * (1.0 - frac) + self.alphas[index + 1] * frac

    def forward(self, sample, timestep, encoder_hidden_states):
        t = timestep.float().reshape(-1)  # scalar, [1] or [B]: all broadcast against the batch below
        return self.denoise(sample, t, self.time_embedding(t), encoder_hidden_states)

    def denoise(self, sample, t, temb, encoder_hidden_states):
        """The network after the time embedding, shared by the variants that add to temb (LCM, SDXL)."""
        h_high = self.res_high(self.conv_in(sample), temb)
        h = self.res_low(self.down(h_high), temb)
        tokens = self.attn_norm(h).flatten(2).transpose(1, 2)
        h = h + self.cross(tokens, encoder_hidden_states).transpose(1, 2).reshape(h.shape)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.up(torch.cat([h, h_high], dim=1))
        x0 = 3.0 * torch.tanh(self.conv_out(F.silu(self.out_norm(h))) / 3.0)
        a = self.alpha_bar(t)[:, None, None, None]
        return (sample - torch.sqrt(a) * x0) / torch.sqrt(1.0 - a)


class VaeDecoder(nn.Module):
    """latent [B,4,h,w] -> image [B,3,8h,8w]: three nearest 2× upsamplings with convs, no tanh at the end."""

    def __init__(self, widths=(32, 24, 16, 16)):
        super().__init__()
        self.conv_in = nn.Conv2d(4, widths[0], 3, padding=1)
        self.norm_in = nn.GroupNorm(8, widths[0])
        self.ups = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(nn.GroupNorm(8, b) for b in widths[1:])
        self.conv_out = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, latent_sample):
        h = F.silu(self.norm_in(self.conv_in(latent_sample)))
        for conv, norm in zip(self.ups, self.norms):
            h = F.silu(norm(conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))))
        return self.conv_out(h)


class VaeEncoder(nn.Module):
    """image [B,3,H,W] -> [B,8,H/8,W/8] (mean ‖ logvar), or the mean alone [B,4,H/8,W/8]."""

    def __init__(self, mean_only: bool, widths=(16, 24, 32)):
        super().__init__()
        self.mean_only = mean_only
        chans = (3,) + widths
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans, chans[1:]))
        self.conv_out = nn.Conv2d(widths[-1], 8, 3, padding=1)

    def forward(self, sample):
        h = sample
        for conv in self.downs:
            h = F.silu(conv(h))
        moments = self.conv_out(h)
        mean, logvar = moments[:, :4], moments[:, 4:] - 6.0  # a small, realistic posterior variance
        return mean if self.mean_only else torch.cat([mean, logvar], dim=1)


@torch.no_grad()
def rescale_last_layer(layer: nn.Module, output: torch.Tensor, target: float, centre: bool = False) -> None:
    """Scale a final layer so that its output's spread is target (and, with centre, shift its mean to 0).

    The spread is the standard deviation, or with centre the 99th percentile of |output − mean|.
    """
    mean = float(output.mean()) if centre else 0.0
    spread = float((output - mean).abs().flatten().quantile(0.99)) if centre else float(output.std())
    gain = target / spread
    layer.weight.mul_(gain)
    layer.bias.sub_(mean).mul_(gain)


@torch.no_grad()
def calibrate(text_encoder: TextEncoder, unet: UNet, decoder: VaeDecoder, encoder: VaeEncoder) -> None:
    """Give random init sensible magnitudes and make the prompt matter.

    x0 proposals get std ~1.5, latents from the encoder std ~1, decoded images 99% within [-0.9, 0.9] (a few
    pixels beyond, as real decoders give, so clamping is exercised). The UNet's cross-attention keys are
    sharpened so the few prompt tokens stand out among 77 mostly-padding states, and its output is scaled
    to std 1 so the prompt visibly changes the result.
    """
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, 1000, (2, SEQ_LEN), generator=g)
    ids[:, 10:] = CLIP_VOCAB - 1
    states, _ = text_encoder(ids)
    sample = torch.randn(2, 4, 16, 16, generator=g)
    timestep = torch.tensor([500, 500])
    unet.cross.k.weight.mul_(6.0)
    captured = {}
    hooks = [unet.cross.out.register_forward_hook(lambda m, i, o: captured.setdefault("attn", o)),
             unet.conv_out.register_forward_hook(lambda m, i, o: captured.setdefault("raw", o))]
    unet(sample, timestep, states)
    rescale_last_layer(unet.cross.out, captured["attn"], 1.0)
    captured.clear()
    unet(sample, timestep, states)  # the last conv feeds 3·tanh(raw/3): calibrate raw with the new attention
    for hook in hooks:
        hook.remove()
    rescale_last_layer(unet.conv_out, captured["raw"], 1.5)
    latents = 3.0 * torch.tanh(torch.randn(2, 4, 16, 16, generator=g)) / 0.18215
    rescale_last_layer(decoder.conv_out, decoder(latents), 0.9, centre=True)
    images = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    rescale_last_layer(encoder.conv_out, encoder(images)[:, :4], 1.0)


class InpaintingUNet(nn.Module):
    """A 9-channel inpainting UNet (sample = latents ‖ mask ‖ masked-image latents, as sd-1.5-inpainting) around the
    tiny UNet: its first conv also reads the five conditioning channels through an extra conv; everything else,
    including the epsilon that maps the latents to the proposed x0, is the 4-channel UNet's."""

    def __init__(self, base: UNet, seed: int):
        super().__init__()
        self.base = base
        generator = torch.Generator().manual_seed(seed)
        self.cond_in = nn.Conv2d(5, base.conv_in.out_channels, 3, padding=1)
        with torch.no_grad():
            self.cond_in.weight.copy_(torch.randn(self.cond_in.weight.shape, generator=generator) * 0.3)
            self.cond_in.bias.zero_()

    def forward(self, sample, timestep, encoder_hidden_states):
        u = self.base
        latents = sample[:, :4]
        t = timestep.float().reshape(-1)
        temb = u.time_embedding(t)
        h_high = u.res_high(u.conv_in(latents) + self.cond_in(sample[:, 4:]), temb)
        h = u.res_low(u.down(h_high), temb)
        tokens = u.attn_norm(h).flatten(2).transpose(1, 2)
        h = h + u.cross(tokens, encoder_hidden_states).transpose(1, 2).reshape(h.shape)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = u.up(torch.cat([h, h_high], dim=1))
        x0 = 3.0 * torch.tanh(u.conv_out(F.silu(u.out_norm(h))) / 3.0)
        a = u.alpha_bar(t)[:, None, None, None]
        return (latents - torch.sqrt(a) * x0) / torch.sqrt(1.0 - a)
