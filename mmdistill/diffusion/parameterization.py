"""Conversions between the x, eps and v parameterisations, and loss weights.

With z = alpha x + sigma eps and alpha^2 + sigma^2 = 1 (Salimans & Ho):

    v     = alpha eps - sigma x
    x     = alpha z - sigma v          = (z - sigma eps) / alpha
    eps   = sigma z + alpha v          = (z - alpha x) / sigma

``alpha`` and ``sigma`` broadcast against ``z`` (see :func:`bcast`).
"""
from typing import Union

import torch

PREDICTION_TYPES = ('eps', 'x', 'v')
LOSS_WEIGHTINGS = ('snr_trunc', 'v_mse', 'snr', 'constant')


def bcast(a: Union[float, torch.Tensor],
          ref: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample tensor (B,) to broadcast against ``ref``
    (B, ...)."""
    a = torch.as_tensor(a, device=ref.device, dtype=ref.dtype)
    if a.ndim == 0:
        return a
    return a.reshape(a.shape + (1, ) * (ref.ndim - a.ndim))


def _clamped(t, eps=1e-12):
    return t.clamp_min(eps)


def x_from_eps(z: torch.Tensor,
               eps: torch.Tensor,
               alpha: torch.Tensor,
               sigma: torch.Tensor) -> torch.Tensor:
    """x = (z - sigma eps) / alpha (undefined at alpha = 0; clamped)."""
    alpha, sigma = bcast(alpha, z), bcast(sigma, z)
    return (z - sigma * eps) / _clamped(alpha)


def eps_from_x(z: torch.Tensor,
               x: torch.Tensor,
               alpha: torch.Tensor,
               sigma: torch.Tensor) -> torch.Tensor:
    """eps = (z - alpha x) / sigma (undefined at sigma = 0; clamped)."""
    alpha, sigma = bcast(alpha, z), bcast(sigma, z)
    return (z - alpha * x) / _clamped(sigma)


def v_from_x_eps(x: torch.Tensor,
                 eps: torch.Tensor,
                 alpha: torch.Tensor,
                 sigma: torch.Tensor) -> torch.Tensor:
    """v = alpha eps - sigma x."""
    return bcast(alpha, x) * eps - bcast(sigma, x) * x


def x_from_v(z: torch.Tensor,
             v: torch.Tensor,
             alpha: torch.Tensor,
             sigma: torch.Tensor) -> torch.Tensor:
    """x = alpha z - sigma v."""
    return bcast(alpha, z) * z - bcast(sigma, z) * v


def eps_from_v(z: torch.Tensor,
               v: torch.Tensor,
               alpha: torch.Tensor,
               sigma: torch.Tensor) -> torch.Tensor:
    """eps = sigma z + alpha v."""
    return bcast(sigma, z) * z + bcast(alpha, z) * v


def to_x(out: torch.Tensor,
         z: torch.Tensor,
         alpha: torch.Tensor,
         sigma: torch.Tensor,
         prediction_type: str) -> torch.Tensor:
    """Turn a network output of ``prediction_type`` into x_hat."""
    if prediction_type == 'x':
        return out
    if prediction_type == 'eps':
        return x_from_eps(z, out, alpha, sigma)
    if prediction_type == 'v':
        return x_from_v(z, out, alpha, sigma)
    raise ValueError(f'unknown prediction_type {prediction_type!r}; use one '
                     f'of {PREDICTION_TYPES}')


def from_x(x: torch.Tensor,
           z: torch.Tensor,
           alpha: torch.Tensor,
           sigma: torch.Tensor,
           prediction_type: str) -> torch.Tensor:
    """Express x_hat in the ``prediction_type`` parameterisation (inverse of
    :func:`to_x`)."""
    if prediction_type == 'x':
        return x
    eps = eps_from_x(z, x, alpha, sigma)
    if prediction_type == 'eps':
        return eps
    if prediction_type == 'v':
        return v_from_x_eps(x, eps, alpha, sigma)
    raise ValueError(f'unknown prediction_type {prediction_type!r}; use one '
                     f'of {PREDICTION_TYPES}')


def x_space_weight(alpha: torch.Tensor,
                   sigma: torch.Tensor,
                   weighting: str = 'snr_trunc',
                   max_snr: float = 1e8) -> torch.Tensor:
    """Weight omega(lambda) of an x-space squared error ||x - x_hat||^2.

    With SNR = alpha^2 / sigma^2 (Salimans & Ho, section 4):

    - ``constant``:  1              (x-MSE)
    - ``snr``:       SNR            (equals eps-MSE)
    - ``snr_trunc``: max(SNR, 1)    (truncated SNR; the paper's default)
    - ``v_mse``:     1 + SNR        (equals v-MSE)
    """
    snr = (alpha**2 / _clamped(sigma**2)).clamp(max=max_snr)
    if weighting == 'constant':
        return torch.ones_like(snr)
    if weighting == 'snr':
        return snr
    if weighting == 'snr_trunc':
        return snr.clamp_min(1.0)
    if weighting == 'v_mse':
        return 1.0 + snr
    raise ValueError(f'unknown loss weighting {weighting!r}; use one of '
                     f'{LOSS_WEIGHTINGS}')


def native_loss_weight(alpha: torch.Tensor, sigma: torch.Tensor,
                       weighting: str, prediction_type: str) -> torch.Tensor:
    """omega(lambda) * c_p^2: the weight to put on ||p_hat - p||^2 in the
    network's own parameterisation p so that it equals
    omega(lambda) * ||x_hat - x||^2.

    ||x_hat - x||^2 = c_p^2 ||p_hat - p||^2 with c_x = 1, c_eps = sigma/alpha,
    c_v = sigma. Closed forms avoid dividing by sigma near t = 0:

    ============  ==============  ==================  ===============
    weighting     x               eps                 v
    ============  ==============  ==================  ===============
    constant      1               sigma^2/alpha^2     sigma^2
    snr           alpha^2/sigma^2 1                   alpha^2
    snr_trunc     max(SNR, 1)     max(1, 1/SNR)       max(alpha^2, sigma^2)
    v_mse         1/sigma^2       1/alpha^2           1
    ============  ==============  ==================  ===============
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f'unknown loss weighting {weighting!r}; use one of '
                         f'{LOSS_WEIGHTINGS}')
    a2, s2 = alpha**2, sigma**2
    if prediction_type == 'x':
        return x_space_weight(alpha, sigma, weighting)
    if prediction_type == 'v':
        return {
            'constant': s2,
            'snr': a2,
            'snr_trunc': torch.maximum(a2, s2),
            'v_mse': torch.ones_like(a2)
        }[weighting]
    if prediction_type == 'eps':
        a2c = a2.clamp_min(1e-8)
        return {
            'constant': s2 / a2c,
            'snr': torch.ones_like(a2),
            'snr_trunc': torch.maximum(torch.ones_like(a2), s2 / a2c),
            'v_mse': 1 / a2c
        }[weighting]
    raise ValueError(f'unknown prediction_type {prediction_type!r}; use one '
                     f'of {PREDICTION_TYPES}')


def readout_coefficients(alpha: torch.Tensor, sigma: torch.Tensor,
                         prediction_type: str) -> tuple:
    """(c_z, c_o) with x_hat = c_z z + c_o out for a network output ``out``
    of ``prediction_type``:

    - ``x``:   (0, 1)
    - ``eps``: (1 / alpha, -sigma / alpha)
    - ``v``:   (alpha, -sigma)
    """
    if prediction_type == 'x':
        return torch.zeros_like(alpha), torch.ones_like(alpha)
    if prediction_type == 'eps':
        return 1 / _clamped(alpha), -sigma / _clamped(alpha)
    if prediction_type == 'v':
        return alpha, -sigma
    raise ValueError(f'unknown prediction_type {prediction_type!r}; use one '
                     f'of {PREDICTION_TYPES}')


def blended_to_x(out: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor,
                 sigma: torch.Tensor, source: str, target: str,
                 s: float) -> torch.Tensor:
    """x_hat of an output read half-way between two parameterisations.

    x_hat = c_z(s) z + c_o(s) out, moving from ``source``'s readout
    (s = 0, :func:`to_x` with ``source``) to ``target``'s (s = 1). Between
    eps and v (coefficients of one sign) the path is geometric,

        c(s) = sign(c) |c_source|^(1 - s) |c_target|^s,

    eps -> v:  x_hat = alpha^(2s - 1) z - sigma alpha^(s - 1) out,

    so the output that gives a fixed x_hat, (alpha^s z - alpha^(1-s) x) /
    sigma, moves smoothly from eps to v even where 1/alpha is large; pairs
    with x (c_z = 0, other sign of c_o) interpolate linearly,
    c(s) = (1 - s) c_source + s c_target.
    """
    if s <= 0 or source == target:
        return to_x(out, z, alpha, sigma, source)
    if s >= 1:
        return to_x(out, z, alpha, sigma, target)
    alpha, sigma = bcast(alpha, z), bcast(sigma, z)
    src = readout_coefficients(alpha, sigma, source)
    dst = readout_coefficients(alpha, sigma, target)
    if {source, target} == {'eps', 'v'}:
        c_z, c_o = (torch.sign(a) * a.abs().clamp_min(1e-12).pow(1 - s)
                    * b.abs().clamp_min(1e-12).pow(s)
                    for a, b in zip(src, dst))
    else:
        c_z, c_o = ((1 - s) * a + s * b for a, b in zip(src, dst))
    return c_z * z + c_o * out
