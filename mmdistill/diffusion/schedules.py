"""Variance-preserving noise schedules in continuous time t in [0, 1].

Forward process: z_t = alpha_t * x + sigma_t * eps, alpha_t^2 + sigma_t^2 = 1,
log-SNR lambda_t = log(alpha_t^2 / sigma_t^2), decreasing in t.

All schedules map a float tensor of times to (alpha_t, sigma_t) of the same
shape. They are pure torch and hold no trainable state.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch


def logsnr_from_alpha_sigma(alpha: torch.Tensor,
                            sigma: torch.Tensor,
                            clip: float = 20.0) -> torch.Tensor:
    """lambda = log(alpha^2 / sigma^2), clipped to [-clip, clip].

    The clip keeps the end points finite: at t = 0 (sigma = 0) and, for the
    cosine schedule, at t = 1 (alpha = 0, SNR = 0).
    """
    tiny = torch.finfo(alpha.dtype).tiny
    lam = 2 * (torch.log(alpha.abs().clamp_min(tiny)) -
               torch.log(sigma.abs().clamp_min(tiny)))
    return lam.clamp(-clip, clip)


def alpha_sigma_from_logsnr(
        logsnr: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """alpha^2 = sigmoid(lambda), sigma^2 = sigmoid(-lambda)."""
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


class NoiseSchedule:
    """Base class: subclasses implement :meth:`alpha_sigma`."""

    def alpha_sigma(
        self, t: Union[float, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def logsnr(self, t: Union[float, torch.Tensor]) -> torch.Tensor:
        """lambda_t, clipped to [-20, 20]."""
        return logsnr_from_alpha_sigma(*self.alpha_sigma(t))

    def snr(self, t: Union[float, torch.Tensor]) -> torch.Tensor:
        """SNR_t = alpha_t^2 / sigma_t^2 = exp(lambda_t)."""
        return torch.exp(self.logsnr(t))


class CosineSchedule(NoiseSchedule):
    """Cosine schedule (Nichol & Dhariwal; continuous form of Salimans & Ho).

    alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2), so
    lambda_t = -2 log tan(pi t / 2). SNR is exactly 0 at t = 1: z_1 is pure
    noise, and an x- or v-predicting model stays well defined there
    (x_hat = alpha z - sigma v = -v at t = 1).
    """

    def alpha_sigma(
        self, t: Union[float, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, dtype=torch.get_default_dtype()) \
            if not torch.is_tensor(t) else t
        half_pi = math.pi / 2
        # cos(pi/2) is 6e-17 in floating point: make SNR exactly 0 at t = 1
        alpha = torch.where(t >= 1, torch.zeros_like(t),
                            torch.cos(half_pi * t))
        sigma = torch.sin(half_pi * t)
        return alpha.clamp_min(0.0), sigma.clamp_min(0.0)

    def __repr__(self) -> str:
        return 'CosineSchedule()'


def ddpm_betas(beta_schedule: str = 'linear',
               num_train_timesteps: int = 1000,
               beta_start: float = 1e-4,
               beta_end: float = 0.02) -> torch.Tensor:
    """Discrete DDPM beta tables (float64).

    - ``linear``: beta_k evenly spaced in [beta_start, beta_end] (Ho et al.).
    - ``scaled_linear``: sqrt(beta_k) evenly spaced (Stable Diffusion / LDM).
    """
    if beta_schedule == 'linear':
        return torch.linspace(beta_start, beta_end, num_train_timesteps,
                              dtype=torch.float64)
    if beta_schedule == 'scaled_linear':
        return torch.linspace(beta_start**0.5, beta_end**0.5,
                              num_train_timesteps, dtype=torch.float64)**2
    raise ValueError(f'unknown beta_schedule {beta_schedule!r}; '
                     "use 'linear' or 'scaled_linear'")


class DiscreteSchedule(NoiseSchedule):
    """A discrete DDPM schedule mapped onto continuous time.

    With alpha_bar_k = prod_{i<=k} (1 - beta_i), k = 1..K, step k sits at
    t_k = k / K with alpha_{t_k}^2 = alpha_bar_k; t = 0 is the clean data
    (alpha = 1). Between grid points lambda_t is interpolated linearly, so a
    model trained on the discrete steps is queried at t = k / K exactly.
    The network of a pretrained discrete model sees the timestep
    ``t * K - 1`` (see :meth:`timestep`).
    """

    def __init__(self,
                 betas: Optional[Union[Sequence[float],
                                       torch.Tensor]] = None,
                 **ddpm_kwargs) -> None:
        if betas is None:
            betas = ddpm_betas(**ddpm_kwargs)
        betas = torch.as_tensor(betas, dtype=torch.float64)
        alpha_bar = torch.cumprod(1 - betas, 0)
        self.num_train_timesteps = len(betas)
        lam = torch.log(alpha_bar) - torch.log1p(-alpha_bar)
        # grid t_0 = 0 (lambda = +20, the clip), t_k = k / K
        self._lam = torch.cat([lam.new_tensor([20.0]), lam.clamp(-20, 20)])

    def logsnr(self, t: Union[float, torch.Tensor]) -> torch.Tensor:
        t = torch.as_tensor(t)
        pos = t.double().clamp(0, 1) * self.num_train_timesteps
        lo = pos.floor().long().clamp(max=self.num_train_timesteps - 1)
        frac = pos - lo
        lam = self._lam.to(t.device)
        out = lam[lo] * (1 - frac) + lam[lo + 1] * frac
        return out.to(t.dtype if t.is_floating_point() else torch.float32)

    def alpha_sigma(
        self, t: Union[float, torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return alpha_sigma_from_logsnr(self.logsnr(t))

    def timestep(self, t: torch.Tensor) -> torch.Tensor:
        """The discrete timestep index (0..K-1) of a pretrained model."""
        return t * self.num_train_timesteps - 1

    def __repr__(self) -> str:
        return f'DiscreteSchedule(K={self.num_train_timesteps})'


def build_schedule(
        cfg: Optional[Union[dict, NoiseSchedule]]) -> NoiseSchedule:
    """Build a schedule from ``dict(type='cosine')`` or
    ``dict(type='ddpm', beta_schedule=..., num_train_timesteps=...)``."""
    if isinstance(cfg, NoiseSchedule):
        return cfg
    cfg = dict(cfg or dict(type='cosine'))
    kind = cfg.pop('type', 'cosine')
    if kind == 'cosine':
        return CosineSchedule(**cfg)
    if kind in ('ddpm', 'discrete'):
        return DiscreteSchedule(**cfg)
    raise ValueError(f"unknown noise schedule {kind!r}; use 'cosine' or "
                     "'ddpm'")
