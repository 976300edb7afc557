"""The networks that leave the project: torch and diffusers only.

``tools/export.py`` copies this file into an exported folder (as the custom
component module of ``unet/`` and ``guidance_embedding/``), so diffusers'
``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)``
rebuilds them without mmdistill. Both are diffusers ``ModelMixin`` /
``ConfigMixin`` models (``save_pretrained`` / ``from_pretrained``); the
mmdistill registry registers them in :mod:`.compact_unet` and
:mod:`.embeddings`.
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn


def sinusoidal_embedding(x: torch.Tensor,
                         dim: int,
                         scale: float = 1000.0,
                         max_period: float = 10000.0) -> torch.Tensor:
    """Fourier features of a per-sample scalar (Vaswani et al.; DDPM):

        f_k(x) = [cos(s x / P^(k / (dim/2))), sin(s x / P^(k / (dim/2)))]

    for k = 0 .. dim/2 - 1, with scale s and max period P. ``x`` is (B,).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) *
                      torch.arange(half, dtype=torch.float32, device=x.device)
                      / half)
    args = scale * x.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, emb.new_zeros(emb.shape[0], 1)], dim=-1)
    return emb


class GuidanceEmbedding(ModelMixin, ConfigMixin):
    """Meng et al.'s w-conditioning: Fourier features of w -> linear layer,
    added to the time embedding. The linear layer starts at zero, so a
    student built from a teacher initially ignores w and equals the
    conditional teacher exactly.

    Args:
        feat_dim (int): number of Fourier features.
        emb_dim (int): width of the time embedding it is added to.
        scale (float): multiplies w before the features (w * 1000 as the
            time step is, following diffusers' LCM).
    """

    @register_to_config
    def __init__(self,
                 feat_dim: int,
                 emb_dim: int,
                 scale: float = 1000.0) -> None:
        super().__init__()
        self.feat_dim, self.scale = feat_dim, scale
        self.proj = nn.Linear(feat_dim, emb_dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.proj(sinusoidal_embedding(w, self.feat_dim, self.scale))


def _norm(ch):
    return nn.GroupNorm(min(8, ch), ch)


class ResBlock(nn.Module):
    """GN-SiLU-conv, + embedding (scale and shift), GN-SiLU-dropout-conv."""

    def __init__(self,
                 cin: int,
                 cout: int,
                 emb_dim: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3,
                                                        padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head spatial self-attention with a residual connection."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm, self.qkv = _norm(ch), nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.out(a.transpose(1, 2).reshape(b, c, h, w))


class CompactUNet(ModelMixin, ConfigMixin):
    """Class-conditional UNet denoiser with an optional guidance embedding.

    The denoiser interface shared by all mmdistill networks:
    ``forward(z, t, y, w=None)`` with continuous time ``t`` in [0, 1] (B,),
    class labels ``y`` (B,) where ``y == num_classes`` is the null
    (unconditional) class, and guidance weight ``w`` (B,) used only once
    :meth:`enable_guidance_embedding` was called. The output is the raw
    prediction (x, eps or v, as the owning model decides).

    Args:
        in_channels (int): image channels.
        base_channels (int): width of the first level.
        channel_mult (tuple[int]): width multiplier per resolution level.
        num_res_blocks (int): residual blocks per level.
        attn_levels (tuple[int]): levels (0 = full resolution) with
            self-attention.
        num_classes (int): number of real classes; 0 for an unconditional
            network.
        dropout (float): dropout inside residual blocks.
        mid_attn (bool): self-attention in the middle block.
        guidance_embed (bool): build the w-embedding now (a distilled student).
    """

    @register_to_config
    def __init__(self,
                 in_channels: int = 1,
                 base_channels: int = 32,
                 channel_mult: Sequence[int] = (1, 2),
                 num_res_blocks: int = 1,
                 attn_levels: Sequence[int] = (),
                 num_classes: int = 10,
                 dropout: float = 0.0,
                 mid_attn: bool = True,
                 guidance_embed: bool = False) -> None:
        super().__init__()
        ch = base_channels
        self.in_channels, self.num_classes = in_channels, num_classes
        self.base_channels = ch
        emb = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(),
                                      nn.Linear(emb, emb))
        self.class_emb = (nn.Embedding(num_classes + 1, emb)
                          if num_classes > 0 else None)
        self.guidance_emb = None
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)

        self.down = nn.ModuleList()
        skips, cur = [ch], ch
        for lvl, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                blocks = [ResBlock(cur, ch * mult, emb, dropout)]
                cur = ch * mult
                if lvl in attn_levels:
                    blocks.append(SelfAttention(cur))
                self.down.append(nn.ModuleList(blocks))
                skips.append(cur)
            if lvl < len(channel_mult) - 1:
                self.down.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skips.append(cur)
        self.mid = nn.ModuleList(
            [ResBlock(cur, cur, emb, dropout)] +
            ([SelfAttention(cur)] if mid_attn else []) +
            [ResBlock(cur, cur, emb, dropout)])
        self.up = nn.ModuleList()
        for lvl, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                blocks = [ResBlock(cur + skips.pop(), ch * mult, emb,
                                   dropout)]
                cur = ch * mult
                if lvl in attn_levels:
                    blocks.append(SelfAttention(cur))
                self.up.append(nn.ModuleList(blocks))
            if lvl > 0:
                self.up.append(nn.Conv2d(cur, cur, 3, padding=1))
        self.norm_out = _norm(cur)
        self.conv_out = nn.Conv2d(cur, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        if guidance_embed:
            self.enable_guidance_embedding()

    def enable_guidance_embedding(self) -> 'CompactUNet':
        """Add the zero-initialised w-embedding (idempotent)."""
        if self.guidance_emb is None:
            self.register_to_config(guidance_embed=True)
            p = self.time_mlp[0].weight
            # .to(tensor): the dtype without diffusers' fp32-modules warning
            self.guidance_emb = GuidanceEmbedding(
                self.base_channels, 4 * self.base_channels).to(p)
        return self

    def embed(self,
              t: torch.Tensor,
              y: Optional[torch.Tensor],
              w: Optional[torch.Tensor] = None) -> torch.Tensor:
        emb = self.time_mlp(sinusoidal_embedding(t, self.base_channels))
        if self.class_emb is not None:
            if y is None:
                y = torch.full_like(t, self.num_classes, dtype=torch.long)
            emb = emb + self.class_emb(y)
        if self.guidance_emb is not None:
            if w is None:
                w = torch.zeros_like(t)
            emb = emb + self.guidance_emb(w)
        return emb

    def forward(self,
                z: torch.Tensor,
                t: torch.Tensor,
                y: Optional[torch.Tensor] = None,
                w: Optional[torch.Tensor] = None) -> torch.Tensor:
        emb = self.embed(t, y, w)
        h = self.conv_in(z)
        hs = [h]
        for blk in self.down:
            h = self._run_block(blk, h, emb)
            hs.append(h)
        for blk in self.mid:
            h = blk(h, emb) if isinstance(blk, ResBlock) else blk(h)
        for blk in self.up:
            if isinstance(blk, nn.Conv2d):  # upsample
                h = blk(F.interpolate(h, scale_factor=2, mode='nearest'))
            else:
                h = self._run_block(blk, torch.cat([h, hs.pop()], 1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))

    @staticmethod
    def _run_block(blk, h, emb):
        if isinstance(blk, nn.Conv2d):
            return blk(h)
        for m in blk:
            h = m(h, emb) if isinstance(m, ResBlock) else m(h)
        return h
