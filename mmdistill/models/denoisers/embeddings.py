"""Sinusoidal features for scalars (time, guidance weight)."""
import math

import torch
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


class GuidanceEmbedding(nn.Module):
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
