"""Single-step updates: DDIM, DDPM posterior, re-noising, CFG, and the
progressive-distillation target. ``alpha_*``/``sigma_*`` are per-sample
tensors (B,) or scalars; they broadcast against ``z`` via :func:`bcast`.

These are the pure step equations; the samplers in
:mod:`mmdistill.diffusion.samplers` walk a time grid with them.
"""
from typing import Tuple, Union

from torch import Tensor

from .parameterization import bcast

Coef = Union[Tensor, float]


def cfg_combine(cond: Tensor, uncond: Tensor, w: Coef) -> Tensor:
    """Classifier-free guidance, Meng et al.'s convention:

        x_hat^w = (1 + w) x_hat_c - w x_hat_u

    w = 0 is the plain conditional model; diffusers' ``guidance_scale``
    equals 1 + w. Valid for x, eps and v outputs alike (the map is affine).

    Args:
        cond: the conditional output x_hat_c (B, ...).
        uncond: the unconditional output x_hat_u (B, ...).
        w: guidance weight, a scalar or per-sample (B,).

    Returns:
        The guided output x_hat^w.
    """
    w = bcast(w, cond)
    return (1 + w) * cond - w * uncond


def ddim_step(z_t: Tensor, x_hat: Tensor, alpha_t: Coef, sigma_t: Coef,
              alpha_s: Coef, sigma_s: Coef) -> Tensor:
    """Deterministic DDIM update t -> s (s < t):

        z_s = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t

    i.e. keep the implied noise eps_hat = (z_t - alpha_t x_hat) / sigma_t.

    Args:
        z_t: the current latent (B, ...).
        x_hat: the denoiser's clean estimate at (z_t, t).
        alpha_t, sigma_t: schedule at t.
        alpha_s, sigma_s: schedule at s.

    Returns:
        z_s.
    """
    a_t, s_t = bcast(alpha_t, z_t), bcast(sigma_t, z_t)
    a_s, s_s = bcast(alpha_s, z_t), bcast(sigma_s, z_t)
    eps_hat = (z_t - a_t * x_hat) / s_t.clamp_min(1e-12)
    return a_s * x_hat + s_s * eps_hat


def ddpm_posterior(z_t: Tensor, x_hat: Tensor, alpha_t: Coef,
                   sigma_t: Coef, alpha_s: Coef,
                   sigma_s: Coef) -> Tuple[Tensor, Tensor]:
    """Mean and std of q(z_s | z_t, x = x_hat) for s < t.

    With alpha_{t|s} = alpha_t / alpha_s and
    sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2:

        mu  = alpha_{t|s} sigma_s^2 / sigma_t^2 * z_t
              + alpha_s sigma_{t|s}^2 / sigma_t^2 * x_hat
        var = sigma_{t|s}^2 sigma_s^2 / sigma_t^2

    The ancestral (DDPM) step is z_s = mu + sqrt(var) * eps, eps ~ N(0, I).

    Args:
        z_t: the current latent (B, ...).
        x_hat: the denoiser's clean estimate at (z_t, t).
        alpha_t, sigma_t: schedule at t.
        alpha_s, sigma_s: schedule at s.

    Returns:
        (mu, std), std = sqrt(var) broadcast against ``z_t``.
    """
    a_t, s_t = bcast(alpha_t, z_t), bcast(sigma_t, z_t)
    a_s, s_s = bcast(alpha_s, z_t), bcast(sigma_s, z_t)
    a_ts = a_t / a_s.clamp_min(1e-12)
    var_ts = (s_t**2 - a_ts**2 * s_s**2).clamp_min(0)
    s_t2 = (s_t**2).clamp_min(1e-24)
    mean = a_ts * s_s**2 / s_t2 * z_t + a_s * var_ts / s_t2 * x_hat
    std = (var_ts * s_s**2 / s_t2).sqrt()
    return mean, std


def renoise_coefficients(z_u: Tensor, alpha_u: Coef, sigma_u: Coef,
                         alpha_s: Coef,
                         sigma_s: Coef) -> Tuple[Tensor, Tensor]:
    """Coefficients of the forward process q(z_s | z_u) for u < s:

        ratio = alpha_s / alpha_u
        std   = sqrt(sigma_s^2 - ratio^2 sigma_u^2)

    so that z_s = ratio z_u + std * eps (see :func:`renoise`).

    Args:
        z_u: the less noisy latent (only its shape is used: broadcasting).
        alpha_u, sigma_u: schedule at u.
        alpha_s, sigma_s: schedule at s.

    Returns:
        (ratio, std), both broadcast against ``z_u``.
    """
    a_u, s_u = bcast(alpha_u, z_u), bcast(sigma_u, z_u)
    a_s, s_s = bcast(alpha_s, z_u), bcast(sigma_s, z_u)
    ratio = a_s / a_u.clamp_min(1e-12)
    std = (s_s**2 - ratio**2 * s_u**2).clamp_min(0).sqrt()
    return ratio, std


def renoise(z_u: Tensor, alpha_u: Coef, sigma_u: Coef, alpha_s: Coef,
            sigma_s: Coef, noise: Tensor) -> Tensor:
    """Sample the forward process q(z_s | z_u) from a less noisy u < s:

        z_s = (alpha_s / alpha_u) z_u
              + sqrt(sigma_s^2 - (alpha_s / alpha_u)^2 sigma_u^2) * noise

    Args:
        z_u: the latent at u.
        alpha_u, sigma_u: schedule at u.
        alpha_s, sigma_s: schedule at s.
        noise: standard normal noise shaped like ``z_u``.

    Returns:
        z_s.
    """
    ratio, std = renoise_coefficients(z_u, alpha_u, sigma_u, alpha_s,
                                      sigma_s)
    return ratio * z_u + std * noise


def progressive_target(z_t: Tensor, z_tpp: Tensor, alpha_t: Coef,
                       sigma_t: Coef, alpha_tpp: Coef,
                       sigma_tpp: Coef) -> Tensor:
    """Salimans & Ho's distillation target x~ for one student step t -> t''.

    Given the teacher's two DDIM steps z_t -> z_t' -> z_t'', the x~ for which
    one DDIM step z_t -> t'' lands exactly on z_t'':

        x~ = (z_t'' - (sigma_t'' / sigma_t) z_t)
             / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)

    At t'' = 0 (sigma = 0, alpha = 1) this is z_t'' itself, the teacher's
    x_hat of its last step.

    Args:
        z_t: the student's start latent (B, ...).
        z_tpp: the teacher's latent after its two steps, z_t''.
        alpha_t, sigma_t: schedule at t.
        alpha_tpp, sigma_tpp: schedule at t''.

    Returns:
        x~, the student's regression target.
    """
    a_t, s_t = bcast(alpha_t, z_t), bcast(sigma_t, z_t)
    a_pp, s_pp = bcast(alpha_tpp, z_t), bcast(sigma_tpp, z_t)
    ratio = s_pp / s_t.clamp_min(1e-12)
    return (z_tpp - ratio * z_t) / (a_pp - ratio * a_t)
