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

Sampling itself is the shared DDPM / DDIM loop of
:mod:`mmdistill.diffusion.samplers`; mode guidance with stop guidance is a
``step_fn`` hook on it (:class:`ModeGuidance`) that adds g to the plain
update before the noise.
"""
import numbers
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mmdistill.diffusion import (SamplerStep, ddim_sample, ddim_step,
                                 ddpm_posterior, ddpm_sample, time_grid)
from mmdistill.diffusion.samplers import Generator, XFn
from mmdistill.utils import UserError

GUIDED_SAMPLERS = ('ddpm', 'ddim')


def check_guidance_args(steps: int, lam: float, t_stop: int,
                        sampler: str = 'ddpm') -> None:
    """Validate the sampler settings.

    Args:
        steps: N, a positive integer.
        lam: guidance scale lambda >= 0.
        t_stop: stop index, an integer in [0, steps].
        sampler: one of :data:`GUIDED_SAMPLERS`.

    Raises:
        UserError: a one-line message on the first bad value.
    """
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


def guidance_active(k: int, t_stop: int) -> bool:
    """Stop guidance: step k (N-1 .. 0) is guided iff k > t_stop."""
    return k > t_stop


def start_index(steps: int, t_init: float) -> int:
    """Grid index i0 to start from when sampling from an intermediate time.

    i0 = round((1 - t_init) N): the grid point t_{N - i0} nearest to
    t_init.

    Args:
        steps: N.
        t_init: the start time, in (0, 1].

    Returns:
        i0 in [0, N].
    """
    if not 0 < t_init <= 1:
        raise UserError(f'init time t_init must be in (0, 1], got {t_init}')
    return int(round((1 - t_init) * steps))


def guidance_term(x_hat: Tensor, mode: Tensor, std: Tensor,
                  lam: float) -> Tensor:
    """The mode-guidance term g = lambda * std * (mode - x_hat0).

    Args:
        x_hat: the model's clean estimate x_hat0.
        mode: the mode m the sample is pulled towards.
        std: the DDPM posterior std of the step.
        lam: guidance scale lambda.

    Returns:
        g.
    """
    return lam * std * (mode - x_hat)


def mode_guided_step(z: Tensor, x_hat: Tensor, mode: Optional[Tensor],
                     alpha_t, sigma_t, alpha_s, sigma_s, lam: float,
                     guide: bool, noise: Optional[Tensor] = None,
                     sampler: str = 'ddpm') -> Tuple[Tensor, Tensor]:
    """One mode-guided step t -> s.

    DDPM: z_s = mu + g + std * noise (no noise when ``noise`` is None);
    DDIM: z_s = ddim_step(z, x_hat) + g; g = lam * std * (mode - x_hat) if
    ``guide`` else 0, with (mu, std) = ddpm_posterior(...).

    Args:
        z: z_t.
        x_hat: x_hat0 = x_fn(z_t, t).
        mode: the mode (None: no guidance).
        alpha_t, sigma_t, alpha_s, sigma_s: the schedule at t and s.
        lam: guidance scale lambda.
        guide: whether this step is guided (stop guidance).
        noise: standard normal noise for the DDPM step.
        sampler: 'ddpm' or 'ddim'.

    Returns:
        (z_s, g).
    """
    mean, std = ddpm_posterior(z, x_hat, alpha_t, sigma_t, alpha_s, sigma_s)
    if sampler == 'ddim':
        base = ddim_step(z, x_hat, alpha_t, sigma_t, alpha_s, sigma_s)
    else:
        base = mean
    if guide and mode is not None and lam > 0:
        g = guidance_term(x_hat, mode, std, lam)
    else:
        g = torch.zeros_like(z)
    out = base + g
    if sampler == 'ddpm' and noise is not None:
        out = out + std * noise
    return out, g


class ModeGuidance:
    """Mode guidance with stop guidance as a sampler ``step_fn`` hook.

    On a step with index k > t_stop it returns update + g with

        g = lambda * std_post * (mode - x_hat0),
        (mu, std_post) = ddpm_posterior(z_t, x_hat0, alpha_t, sigma_t,
                                        alpha_s, sigma_s),

    and leaves the step alone otherwise; the sampler adds its noise after
    (DDPM: z_s = mu + g + std_post * eps; DDIM: z_s = ddim_step(...) + g).

    Args:
        modes: (B, ...) mode of each sample; None disables guidance.
        lam: guidance scale lambda (0 disables guidance).
        t_stop: steps k > t_stop are guided.
        trace: if a list, (k, |g|_max) is appended per step (0 on
            unguided steps).
    """

    def __init__(self, modes: Optional[Tensor], lam: float, t_stop: int,
                 trace: Optional[List[Tuple[int, float]]] = None) -> None:
        self.modes, self.lam, self.t_stop = modes, lam, t_stop
        self.trace = trace

    def guides(self, k: int) -> bool:
        """Whether step k is guided."""
        return (self.modes is not None and self.lam > 0
                and guidance_active(k, self.t_stop))

    def __call__(self, step: SamplerStep) -> Optional[Tensor]:
        """The guided update of ``step`` (None: unguided, keep it)."""
        out = None
        gmax = 0.0
        if self.guides(step.k):
            _, std = ddpm_posterior(step.z, step.x_hat, step.alpha_t,
                                    step.sigma_t, step.alpha_s, step.sigma_s)
            g = guidance_term(step.x_hat, self.modes, std, self.lam)
            out = step.update + g
            if self.trace is not None:
                gmax = float(g.abs().max())
        if self.trace is not None:
            self.trace.append((step.k, gmax))
        return out


def mode_guided_sample(x_fn: XFn, z: Tensor, schedule, steps: int = 50,
                       modes: Optional[Tensor] = None, lam: float = 0.1,
                       t_stop: Optional[int] = None, sampler: str = 'ddpm',
                       generator: Generator = None, t_init: float = 1.0,
                       trace: Optional[List[Tuple[int, float]]] = None
                       ) -> Tensor:
    """Sample with mode guidance and stop guidance.

    The DDPM / DDIM sampler of :mod:`mmdistill.diffusion.samplers` on the
    uniform grid from t_init, with the :class:`ModeGuidance` hook.

    Args:
        x_fn: ``x_fn(z, t) -> x_hat0`` (CFG included), t (B,).
        z: the start z_{t_init} (B, ...): noise for t_init = 1.
        schedule: ``alpha_sigma(t) -> (alpha, sigma)``.
        steps: N, grid steps over [0, 1].
        modes: (B, ...) mode of each sample; None or ``lam = 0``: plain
            DDPM/DDIM sampling.
        lam: guidance scale lambda >= 0.
        t_stop: guide steps k > t_stop; None -> steps // 2.
        sampler: 'ddpm' (ancestral) or 'ddim' (eta = 0).
        generator: torch.Generator or list of per-sample generators.
        t_init: start time (< 1 starts from a noised image at the
            nearest grid point, SDEdit-style).
        trace: if a list, (k, |g|_max) per step is appended.

    Returns:
        x_0 (un-clipped).
    """
    t_stop = steps // 2 if t_stop is None else t_stop
    check_guidance_args(steps, lam, t_stop, sampler)
    if modes is not None and tuple(modes.shape) != tuple(z.shape):
        raise UserError(f'modes shape {tuple(modes.shape)} does not match '
                        f'the samples {tuple(z.shape)}')
    grid = time_grid(steps)
    i0 = start_index(steps, t_init)
    if i0 >= steps:  # t_init rounds to t = 0: nothing left to sample
        return z
    hook = ModeGuidance(modes, lam, t_stop, trace)
    if sampler == 'ddim':
        return ddim_sample(x_fn, z, schedule, grid=grid[i0:], step_fn=hook)
    return ddpm_sample(x_fn, z, schedule, generator=generator,
                       grid=grid[i0:], step_fn=hook)
