"""Mode guidance and stop guidance (MGD3, section 3.2-3.3).

Sampling walks the uniform grid t_i = i / N, i = N..0 (``time_grid``); the
step from t_i to t_{i-1} has index k = i - 1 (N - 1 for the noisiest step,
0 for the last). With x_hat0 = x_fn(z_t, t) (the model's un-clipped clean
estimate, CFG included) and the DDPM posterior

    mu_t, sigma_t = ddpm_posterior(z_t, x_hat0, alpha_t, sigma_t, alpha_s,
                                   sigma_s)

the mode-guided ancestral (DDPM) step towards mode m is

    z_s = mu_t + g + sigma_t * eps,      eps ~ N(0, I)
    g   = lambda * sigma_t * (m - x_hat0)   if k > t_stop  else 0

(stop guidance: no guidance once k <= t_stop). With N = 50 and
t_stop = 25 guidance acts in the 24 noisiest steps, as in the paper.
The DDIM variant replaces mu_t + sigma_t * eps by the deterministic DDIM
step and keeps the same guidance term g (scaled by the same posterior std
sigma_t, the noise an ancestral step would add).
"""
import numbers

import torch

from mmdistill.diffusion import (ddim_step, ddpm_posterior, randn_like,
                                 time_grid)
from mmdistill.utils import UserError

GUIDED_SAMPLERS = ('ddpm', 'ddim')


def check_guidance_args(steps, lam, t_stop, sampler='ddpm'):
    """Validate the sampler settings; bad values raise a one-line
    :class:`UserError`."""
    if not isinstance(steps, numbers.Integral) or isinstance(
            steps, bool) or steps < 1:
        raise UserError(f'steps must be a positive integer, got {steps!r}')
    if not isinstance(lam, numbers.Real) or lam != lam or lam < 0:
        raise UserError(f'mode guidance scale lambda must be >= 0, got '
                        f'{lam!r} (the paper uses 0.1; 0 disables guidance)')
    if not isinstance(t_stop, numbers.Integral) or isinstance(
            t_stop, bool) or not 0 <= t_stop <= steps:
        raise UserError(f't_stop must be an integer in [0, steps={steps}], '
                        f'got {t_stop!r} (steps with index k > t_stop are '
                        'guided; the paper uses steps // 2)')
    if sampler not in GUIDED_SAMPLERS:
        raise UserError(f'unknown sampler {sampler!r} for mode-guided '
                        f'sampling; use one of {GUIDED_SAMPLERS}')


def guidance_active(k, t_stop):
    """Stop guidance: step k (N-1 .. 0) is guided iff k > t_stop."""
    return k > t_stop


def start_index(steps, t_init):
    """Grid index i0 to start from when sampling from an intermediate time
    t_init in (0, 1]: the grid point t_{N - i0} nearest to t_init."""
    if not 0 < t_init <= 1:
        raise UserError(f'init time t_init must be in (0, 1], got {t_init}')
    return int(round((1 - t_init) * steps))


def mode_guided_step(z, x_hat, mode, alpha_t, sigma_t, alpha_s, sigma_s,
                     lam, guide, noise=None, sampler='ddpm'):
    """One step t -> s; returns (z_s, g) with g the guidance term.

    DDPM: z_s = mu + g + std * noise (no noise when ``noise`` is None);
    DDIM: z_s = ddim_step(z, x_hat) + g; g = lam * std * (mode - x_hat) if
    ``guide`` else 0, with (mu, std) = ddpm_posterior(...).
    """
    mean, std = ddpm_posterior(z, x_hat, alpha_t, sigma_t, alpha_s, sigma_s)
    if sampler == 'ddim':
        base = ddim_step(z, x_hat, alpha_t, sigma_t, alpha_s, sigma_s)
    else:
        base = mean
    if guide and mode is not None and lam > 0:
        g = lam * std * (mode - x_hat)
    else:
        g = torch.zeros_like(z)
    out = base + g
    if sampler == 'ddpm' and noise is not None:
        out = out + std * noise
    return out, g


def mode_guided_sample(x_fn, z, schedule, steps=50, modes=None, lam=0.1,
                       t_stop=None, sampler='ddpm', generator=None,
                       t_init=1.0, trace=None):
    """Sample with mode guidance and stop guidance.

    Args:
        x_fn (callable): ``x_fn(z, t) -> x_hat0`` (CFG included), t (B,).
        z (Tensor): the start z_{t_init} (B, ...): noise for t_init = 1.
        schedule: ``alpha_sigma(t) -> (alpha, sigma)``.
        steps (int): N, grid steps over [0, 1].
        modes (Tensor | None): (B, ...) mode of each sample; None or
            ``lam = 0``: plain DDPM/DDIM sampling.
        lam (float): guidance scale lambda >= 0.
        t_stop (int | None): guide steps k > t_stop; None -> steps // 2.
        sampler (str): 'ddpm' (ancestral) or 'ddim' (eta = 0).
        generator: torch.Generator or list of per-sample generators.
        t_init (float): start time (< 1 starts from a noised image at the
            nearest grid point, SDEdit-style).
        trace (list | None): if a list, (k, |g|_max) per step is appended.

    Returns:
        Tensor: x_0 (un-clipped).
    """
    t_stop = steps // 2 if t_stop is None else t_stop
    check_guidance_args(steps, lam, t_stop, sampler)
    if modes is not None and tuple(modes.shape) != tuple(z.shape):
        raise UserError(f'modes shape {tuple(modes.shape)} does not match '
                        f'the samples {tuple(z.shape)}')
    grid = time_grid(steps)
    i0 = start_index(steps, t_init)
    for i in range(i0, steps):
        k = steps - 1 - i
        tt = torch.full((z.shape[0], ), float(grid[i]), dtype=z.dtype,
                        device=z.device)
        ss = torch.full_like(tt, float(grid[i + 1]))
        x_hat = x_fn(z, tt)
        noise = randn_like(z, generator) if (
            sampler == 'ddpm' and float(grid[i + 1]) > 0) else None
        z, g = mode_guided_step(z, x_hat, modes, *schedule.alpha_sigma(tt),
                                *schedule.alpha_sigma(ss), lam,
                                guidance_active(k, t_stop), noise, sampler)
        if trace is not None:
            trace.append((k, float(g.abs().max())))
    return z
