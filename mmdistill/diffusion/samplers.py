"""Samplers over a denoiser callable ``x_fn(z, t) -> x_hat``.

``t`` is passed as a (B,) tensor of continuous times in [0, 1]. Each sampler
walks a descending time grid t_0 > t_1 > ... > t_N; by default the uniform
grid t_start * (N - j) / N, j = 0..N (:func:`time_grid`), or any grid given
as ``grid=``. Guidance lives in ``x_fn`` (see ``mmdistill.models``), so one
sampler serves a CFG teacher (two evaluations per step) and a distilled
student (one).

Every step j (t = t_j -> s = t_{j+1}) has the same shape:

    x_hat = x_fn(z_t, t)
    u     = the sampler's deterministic update      (the "plain update")
    u'    = step_fn(step) if it returns a tensor, else u
    z_s   = u' + std * eps,  eps ~ N(0, I)          (stochastic steps only)
    callback(step)                                  (step.z_next = z_s)

``step_fn`` and ``callback`` receive a :class:`SamplerStep`; a ``step_fn``
can steer the sampler (e.g. mode guidance adds a term to u), a callback only
observes. Noise is drawn after ``step_fn``, only on stochastic steps.

Noise: ``generator`` is ``None``, a ``torch.Generator``, or a list with one
generator per sample (per-sample seeds make results independent of how a
batch is split across processes).
"""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from .steps import ddim_step, ddpm_posterior, renoise_coefficients

SAMPLERS = ('ddim', 'ddpm', 'stochastic')

Generator = Union[None, torch.Generator, Sequence[torch.Generator]]
Grid = Union[Tensor, Sequence[float]]
XFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class SamplerStep:
    """What ``step_fn`` and ``callback`` see at one step t -> s.

    Attributes:
        i: position of t in the grid (0 for the first, noisiest step).
        k: steps left after this one, len(grid) - 2 - i (N - 1 for the
            first step of a full N-step grid, 0 for the last).
        t: the current time (B,).
        s: the time this step lands on (B,).
        alpha_t, sigma_t, alpha_s, sigma_s: the schedule at t and s (B,).
        z: the current latent z_t.
        x_hat: the denoiser's estimate x_fn(z_t, t).
        update: the sampler's plain deterministic update (DDIM: z_s; DDPM:
            the posterior mean; stochastic: (alpha_s / alpha_u) z_u).
        std: scale of the noise added after ``step_fn`` (None on a
            deterministic step: DDIM, and the last DDPM step with s = 0).
        z_next: the new latent z_s; set before ``callback`` is called.
    """
    i: int
    k: int
    t: Tensor
    s: Tensor
    alpha_t: Tensor
    sigma_t: Tensor
    alpha_s: Tensor
    sigma_s: Tensor
    z: Tensor
    x_hat: Tensor
    update: Tensor
    std: Optional[Tensor] = None
    z_next: Optional[Tensor] = None


StepFn = Callable[[SamplerStep], Optional[Tensor]]
Callback = Callable[[SamplerStep], None]


def randn_like(z: Tensor, generator: Generator = None) -> Tensor:
    """Standard normal noise eps ~ N(0, I) shaped like ``z``.

    Args:
        z: the tensor whose shape, dtype and device the noise takes.
        generator: None (global RNG), a generator, or a list with one
            generator per sample (row j of the noise is drawn from
            ``generator[j]``).

    Returns:
        The noise.
    """
    if isinstance(generator, (list, tuple)):
        return torch.stack([
            torch.randn(z.shape[1:], generator=g, dtype=z.dtype,
                        device=g.device).to(z.device) for g in generator
        ])
    return torch.randn(z.shape, generator=generator, dtype=z.dtype,
                       device=z.device if generator is None
                       else generator.device).to(z.device)


def time_grid(steps: int, t_start: float = 1.0,
              device: Optional[torch.device] = None) -> Tensor:
    """The uniform grid t_i = t_start * i / N for i = N..0.

    Args:
        steps: N >= 1.
        t_start: the first (largest) time.
        device: device of the grid.

    Returns:
        Descending float64 tensor of N + 1 points, t_start first, 0 last.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f'steps must be a positive integer, got {steps!r}')
    return torch.linspace(t_start, 0.0, steps + 1, device=device,
                          dtype=torch.float64)


def resolve_grid(steps: Optional[int] = None,
                 t_start: Optional[float] = None,
                 grid: Optional[Grid] = None) -> Tensor:
    """The time grid a sampler walks.

    Without ``grid`` this is ``time_grid(steps, t_start)`` (t_start
    defaults to 1). An explicit ``grid`` must be 1-D, strictly decreasing,
    within [0, 1] and hold at least 2 points; ``steps``, if given, must
    equal len(grid) - 1, and ``t_start`` must then be left unset.

    Args:
        steps: number of steps N.
        t_start: start of the uniform grid.
        grid: explicit times t_0 > ... > t_N.

    Returns:
        float64 CPU tensor of the N + 1 times.
    """
    if grid is None:
        if steps is None:
            raise ValueError('give the number of steps or a time grid')
        return time_grid(steps, 1.0 if t_start is None else t_start)
    grid = torch.as_tensor(grid, dtype=torch.float64).detach().cpu()
    if grid.ndim != 1 or len(grid) < 2:
        raise ValueError('a time grid is a 1-D sequence of at least 2 '
                         f'times, got shape {tuple(grid.shape)}')
    if not bool((grid[1:] < grid[:-1]).all()) or float(grid.min()) < 0 \
            or float(grid.max()) > 1:
        raise ValueError('a time grid must be strictly decreasing within '
                         f'[0, 1], got {grid.tolist()}')
    if steps is not None and steps != len(grid) - 1:
        raise ValueError(f'steps={steps!r} does not match the grid of '
                         f'{len(grid) - 1} steps')
    if t_start is not None:
        raise ValueError('t_start sets the uniform grid; with an explicit '
                         'grid leave it unset')
    return grid


def _full(z: Tensor, t) -> Tensor:
    return torch.full((z.shape[0], ), float(t), device=z.device,
                      dtype=z.dtype)


def _advance(step: SamplerStep, step_fn: Optional[StepFn],
             callback: Optional[Callback], generator: Generator) -> Tensor:
    """z_s = u' + std * eps with u' = step_fn(step) or the plain update."""
    update = step.update
    if step_fn is not None:
        new = step_fn(step)
        if new is not None:
            update = new
    if step.std is None:
        z = update
    else:
        z = update + step.std * randn_like(step.z, generator)
    step.z_next = z
    if callback is not None:
        callback(step)
    return z


def ddim_sample(x_fn: XFn, z: Tensor, schedule, steps: Optional[int] = None,
                t_start: Optional[float] = None, *,
                grid: Optional[Grid] = None,
                step_fn: Optional[StepFn] = None,
                callback: Optional[Callback] = None) -> Tensor:
    """Deterministic DDIM (eta = 0) over the time grid.

    z_s = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t with
    x_hat = x_fn(z_t, t) (:func:`ddim_step`); a last step to s = 0 returns
    x_hat.

    Args:
        x_fn: the denoiser ``x_fn(z, t) -> x_hat``.
        z: the start latent z_{t_0} (B, ...).
        schedule: ``alpha_sigma(t) -> (alpha, sigma)``.
        steps: N for the uniform grid (or the length check of ``grid``).
        t_start: start of the uniform grid (default 1).
        grid: explicit descending times (see :func:`resolve_grid`).
        step_fn: hook that may replace the update (see module docstring).
        callback: observer called after every step.

    Returns:
        z at the last grid time (x_0 when the grid ends at 0).
    """
    grid = resolve_grid(steps, t_start, grid)
    n = len(grid) - 1
    for i in range(n):
        tt, ss = _full(z, grid[i]), _full(z, grid[i + 1])
        x_hat = x_fn(z, tt)
        (a_t, s_t), (a_s, s_s) = schedule.alpha_sigma(tt), \
            schedule.alpha_sigma(ss)
        update = ddim_step(z, x_hat, a_t, s_t, a_s, s_s)
        z = _advance(SamplerStep(i, n - 1 - i, tt, ss, a_t, s_t, a_s, s_s,
                                 z, x_hat, update), step_fn, callback, None)
    return z


def ddpm_sample(x_fn: XFn, z: Tensor, schedule, steps: Optional[int] = None,
                t_start: Optional[float] = None, generator: Generator = None,
                *, grid: Optional[Grid] = None,
                step_fn: Optional[StepFn] = None,
                callback: Optional[Callback] = None) -> Tensor:
    """Ancestral sampling: z_s ~ q(z_s | z_t, x = x_hat(z_t)) on the grid.

    z_s = mu + std * eps with (mu, std) = ddpm_posterior(z_t, x_hat, ...)
    (:func:`ddpm_posterior`); noise is drawn only when s > 0, so a last
    step to s = 0 returns mu = x_hat.

    Args:
        x_fn: the denoiser ``x_fn(z, t) -> x_hat``.
        z: the start latent z_{t_0} (B, ...).
        schedule: ``alpha_sigma(t) -> (alpha, sigma)``.
        steps: N for the uniform grid (or the length check of ``grid``).
        t_start: start of the uniform grid (default 1).
        generator: None, a generator, or one generator per sample.
        grid: explicit descending times (see :func:`resolve_grid`).
        step_fn: hook that may replace the update mu (noise is added
            after it).
        callback: observer called after every step.

    Returns:
        z at the last grid time (x_0 when the grid ends at 0).
    """
    grid = resolve_grid(steps, t_start, grid)
    n = len(grid) - 1
    for i in range(n):
        tt, ss = _full(z, grid[i]), _full(z, grid[i + 1])
        x_hat = x_fn(z, tt)
        (a_t, s_t), (a_s, s_s) = schedule.alpha_sigma(tt), \
            schedule.alpha_sigma(ss)
        mean, std = ddpm_posterior(z, x_hat, a_t, s_t, a_s, s_s)
        z = _advance(SamplerStep(i, n - 1 - i, tt, ss, a_t, s_t, a_s, s_s,
                                 z, x_hat, mean,
                                 std if float(grid[i + 1]) > 0 else None),
                     step_fn, callback, generator)
    return z


def stochastic_sample(x_fn: XFn, z: Tensor, schedule,
                      steps: Optional[int] = None,
                      t_start: Optional[float] = None,
                      generator: Generator = None, *,
                      grid: Optional[Grid] = None,
                      step_fn: Optional[StepFn] = None,
                      callback: Optional[Callback] = None) -> Tensor:
    """Meng et al.'s stochastic N-step sampler for a distilled model.

    From t_j, one deterministic DDIM step of twice the length to
    u = t_{j+2}, then forward re-noising to s = t_{j+1} (:func:`renoise`):

        z_u = ddim_step(z_t, x_hat, t -> u)
        z_s = (alpha_s / alpha_u) z_u
              + sqrt(sigma_s^2 - (alpha_s / alpha_u)^2 sigma_u^2) * eps

    The final step is a plain DDIM step to the last grid time. Uses N
    network evaluations, like the deterministic sampler.

    Args:
        x_fn: the denoiser ``x_fn(z, t) -> x_hat``.
        z: the start latent z_{t_0} (B, ...).
        schedule: ``alpha_sigma(t) -> (alpha, sigma)``.
        steps: N for the uniform grid (or the length check of ``grid``).
        t_start: start of the uniform grid (default 1).
        generator: None, a generator, or one generator per sample.
        grid: explicit descending times (see :func:`resolve_grid`).
        step_fn: hook that may replace the update (alpha_s / alpha_u) z_u
            (noise is added after it).
        callback: observer called after every step.

    Returns:
        z at the last grid time (x_0 when the grid ends at 0).
    """
    grid = resolve_grid(steps, t_start, grid)
    n = len(grid) - 1
    for i in range(n):
        tt, ss = _full(z, grid[i]), _full(z, grid[i + 1])
        x_hat = x_fn(z, tt)
        (a_t, s_t), (a_s, s_s) = schedule.alpha_sigma(tt), \
            schedule.alpha_sigma(ss)
        if i == n - 1:
            update, std = ddim_step(z, x_hat, a_t, s_t, a_s, s_s), None
        else:
            a_u, s_u = schedule.alpha_sigma(_full(z, grid[i + 2]))
            z_u = ddim_step(z, x_hat, a_t, s_t, a_u, s_u)
            ratio, std = renoise_coefficients(z_u, a_u, s_u, a_s, s_s)
            update = ratio * z_u
        z = _advance(SamplerStep(i, n - 1 - i, tt, ss, a_t, s_t, a_s, s_s,
                                 z, x_hat, update, std),
                     step_fn, callback, generator)
    return z


def sample(name: str, x_fn: XFn, z: Tensor, schedule,
           steps: Optional[int] = None, generator: Generator = None,
           t_start: Optional[float] = None, *, grid: Optional[Grid] = None,
           step_fn: Optional[StepFn] = None,
           callback: Optional[Callback] = None) -> Tensor:
    """Dispatch by sampler name: 'ddim', 'ddpm' or 'stochastic'.

    Args:
        name: the sampler.
        x_fn, z, schedule, steps, t_start, grid, step_fn, callback: as for
            :func:`ddim_sample`.
        generator: noise generator(s); unused by 'ddim'.

    Returns:
        z at the last grid time.
    """
    hooks = dict(grid=grid, step_fn=step_fn, callback=callback)
    if name == 'ddim':
        return ddim_sample(x_fn, z, schedule, steps, t_start, **hooks)
    if name == 'ddpm':
        return ddpm_sample(x_fn, z, schedule, steps, t_start, generator,
                           **hooks)
    if name == 'stochastic':
        return stochastic_sample(x_fn, z, schedule, steps, t_start,
                                 generator, **hooks)
    raise ValueError(f'unknown sampler {name!r}; use one of {SAMPLERS}')
