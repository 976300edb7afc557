"""Samplers over a denoiser callable ``x_fn(z, t) -> x_hat``.

``t`` is passed as a (B,) tensor of continuous times in [0, 1]. Each sampler
walks the uniform time grid t_i = t_start * i / N, i = N..0. Guidance lives
in ``x_fn`` (see ``mmdistill.models``), so one sampler serves a CFG teacher
(two evaluations per step) and a distilled student (one).

Noise: ``generator`` is ``None``, a ``torch.Generator``, or a list with one
generator per sample (per-sample seeds make results independent of how a
batch is split across processes).
"""
import torch

from .steps import ddim_step, ddpm_posterior, renoise

SAMPLERS = ('ddim', 'ddpm', 'stochastic')


def randn_like(z, generator=None):
    """Standard normal noise shaped like ``z`` (per-sample generators ok)."""
    if isinstance(generator, (list, tuple)):
        return torch.stack([
            torch.randn(z.shape[1:], generator=g, dtype=z.dtype,
                        device=g.device).to(z.device) for g in generator
        ])
    return torch.randn(z.shape, generator=generator, dtype=z.dtype,
                       device=z.device if generator is None
                       else generator.device).to(z.device)


def time_grid(steps, t_start=1.0, device=None):
    """t_i = t_start * i / N for i = N..0 (descending, N + 1 points)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f'steps must be a positive integer, got {steps!r}')
    return torch.linspace(t_start, 0.0, steps + 1, device=device,
                          dtype=torch.float64)


def _full(z, t):
    return torch.full((z.shape[0], ), float(t), device=z.device,
                      dtype=z.dtype)


def ddim_sample(x_fn, z, schedule, steps, t_start=1.0):
    """Deterministic DDIM (eta = 0) in ``steps`` uniform steps.

    z_{t_{i-1}} = alpha_s x_hat + sigma_s (z - alpha_t x_hat) / sigma_t with
    x_hat = x_fn(z, t_i); the last step (s = 0) returns x_hat.
    """
    grid = time_grid(steps, t_start)
    for t, s in zip(grid[:-1], grid[1:]):
        tt, ss = _full(z, t), _full(z, s)
        x_hat = x_fn(z, tt)
        z = ddim_step(z, x_hat, *schedule.alpha_sigma(tt),
                      *schedule.alpha_sigma(ss))
    return z


def ddpm_sample(x_fn, z, schedule, steps, t_start=1.0, generator=None):
    """Ancestral sampling: z_s ~ q(z_s | z_t, x = x_hat(z_t)) on the grid.

    The last step (s = 0) has zero posterior variance and returns x_hat.
    """
    grid = time_grid(steps, t_start)
    for t, s in zip(grid[:-1], grid[1:]):
        tt, ss = _full(z, t), _full(z, s)
        x_hat = x_fn(z, tt)
        mean, std = ddpm_posterior(z, x_hat, *schedule.alpha_sigma(tt),
                                   *schedule.alpha_sigma(ss))
        z = mean + std * randn_like(z, generator) if float(s) > 0 else mean
    return z


def stochastic_sample(x_fn, z, schedule, steps, t_start=1.0,
                      generator=None):
    """Meng et al.'s stochastic N-step sampler for a distilled model.

    From t_i, one deterministic DDIM step of twice the length to t_{i-2},
    then forward re-noising to t_{i-1}:

        z_{t_{i-1}} = (alpha_{i-1} / alpha_{i-2}) z'
                      + sqrt(sigma_{i-1}^2 - (alpha_{i-1}/alpha_{i-2})^2
                             sigma_{i-2}^2) * eps

    The final step (i = 1) is a plain DDIM step to t = 0. Uses N network
    evaluations, like the deterministic sampler.
    """
    grid = time_grid(steps, t_start)
    n = steps
    for i in range(n, 0, -1):
        t = _full(z, grid[n - i])
        x_hat = x_fn(z, t)
        a_t, s_t = schedule.alpha_sigma(t)
        if i == 1:
            return ddim_step(z, x_hat, a_t, s_t,
                             *schedule.alpha_sigma(_full(z, 0.0)))
        u = _full(z, grid[n - i + 2])
        s = _full(z, grid[n - i + 1])
        a_u, s_u = schedule.alpha_sigma(u)
        z_u = ddim_step(z, x_hat, a_t, s_t, a_u, s_u)
        z = renoise(z_u, a_u, s_u, *schedule.alpha_sigma(s),
                    randn_like(z, generator))
    return z


def sample(name, x_fn, z, schedule, steps, generator=None, t_start=1.0):
    """Dispatch by sampler name: 'ddim', 'ddpm' or 'stochastic'."""
    if name == 'ddim':
        return ddim_sample(x_fn, z, schedule, steps, t_start)
    if name == 'ddpm':
        return ddpm_sample(x_fn, z, schedule, steps, t_start, generator)
    if name == 'stochastic':
        return stochastic_sample(x_fn, z, schedule, steps, t_start,
                                 generator)
    raise ValueError(f'unknown sampler {name!r}; use one of {SAMPLERS}')
