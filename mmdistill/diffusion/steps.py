"""Single-step updates: DDIM, DDPM posterior, re-noising, CFG, and the
progressive-distillation target. ``alpha_*``/``sigma_*`` are per-sample
tensors (B,) or scalars; they broadcast against ``z`` via :func:`bcast`.
"""
import torch

from .parameterization import bcast


def cfg_combine(cond, uncond, w):
    """Classifier-free guidance, Meng et al.'s convention:

        x_hat^w = (1 + w) x_hat_c - w x_hat_u

    w = 0 is the plain conditional model; diffusers' ``guidance_scale``
    equals 1 + w. Valid for x, eps and v outputs alike (the map is affine).
    """
    w = bcast(w, cond)
    return (1 + w) * cond - w * uncond


def ddim_step(z_t, x_hat, alpha_t, sigma_t, alpha_s, sigma_s):
    """Deterministic DDIM update t -> s (s < t):

        z_s = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t

    i.e. keep the implied noise eps_hat = (z_t - alpha_t x_hat) / sigma_t.
    """
    a_t, s_t = bcast(alpha_t, z_t), bcast(sigma_t, z_t)
    a_s, s_s = bcast(alpha_s, z_t), bcast(sigma_s, z_t)
    eps_hat = (z_t - a_t * x_hat) / s_t.clamp_min(1e-12)
    return a_s * x_hat + s_s * eps_hat


def ddpm_posterior(z_t, x_hat, alpha_t, sigma_t, alpha_s, sigma_s):
    """Mean and std of q(z_s | z_t, x = x_hat) for s < t.

    With alpha_{t|s} = alpha_t / alpha_s and
    sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2:

        mu  = alpha_{t|s} sigma_s^2 / sigma_t^2 * z_t
              + alpha_s sigma_{t|s}^2 / sigma_t^2 * x_hat
        var = sigma_{t|s}^2 sigma_s^2 / sigma_t^2
    """
    a_t, s_t = bcast(alpha_t, z_t), bcast(sigma_t, z_t)
    a_s, s_s = bcast(alpha_s, z_t), bcast(sigma_s, z_t)
    a_ts = a_t / a_s.clamp_min(1e-12)
    var_ts = (s_t**2 - a_ts**2 * s_s**2).clamp_min(0)
    s_t2 = (s_t**2).clamp_min(1e-24)
    mean = a_ts * s_s**2 / s_t2 * z_t + a_s * var_ts / s_t2 * x_hat
    std = (var_ts * s_s**2 / s_t2).sqrt()
    return mean, std


def renoise(z_u, alpha_u, sigma_u, alpha_s, sigma_s, noise):
    """Sample the forward process q(z_s | z_u) from a less noisy u < s:

        z_s = (alpha_s / alpha_u) z_u
              + sqrt(sigma_s^2 - (alpha_s / alpha_u)^2 sigma_u^2) * noise
    """
    a_u, s_u = bcast(alpha_u, z_u), bcast(sigma_u, z_u)
    a_s, s_s = bcast(alpha_s, z_u), bcast(sigma_s, z_u)
    ratio = a_s / a_u.clamp_min(1e-12)
    std = (s_s**2 - ratio**2 * s_u**2).clamp_min(0).sqrt()
    return ratio * z_u + std * noise


def progressive_target(z_t, z_tpp, alpha_t, sigma_t, alpha_tpp, sigma_tpp):
    """Salimans & Ho's distillation target x~ for one student step t -> t''.

    Given the teacher's two DDIM steps z_t -> z_t' -> z_t'', the x~ for which
    one DDIM step z_t -> t'' lands exactly on z_t'':

        x~ = (z_t'' - (sigma_t'' / sigma_t) z_t)
             / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)

    At t'' = 0 (sigma = 0, alpha = 1) this is z_t'' itself, the teacher's
    x_hat of its last step.
    """
    a_t, s_t = bcast(alpha_t, z_t), bcast(sigma_t, z_t)
    a_pp, s_pp = bcast(alpha_tpp, z_t), bcast(sigma_tpp, z_t)
    ratio = s_pp / s_t.clamp_min(1e-12)
    return (z_tpp - ratio * z_t) / (a_pp - ratio * a_t)
