"""Framework-free diffusion math (torch only): schedules, parameterisations,
single steps and samplers. Every function states the equation it implements.
"""
from .parameterization import (LOSS_WEIGHTINGS, PREDICTION_TYPES, bcast,
                               blended_to_x, eps_from_v, eps_from_x, from_x,
                               native_loss_weight, readout_coefficients, to_x,
                               v_from_x_eps, x_from_eps, x_from_v,
                               x_space_weight)
from .samplers import (SAMPLERS, SamplerStep, ddim_sample, ddpm_sample,
                       randn_like, resolve_grid, sample, stochastic_sample,
                       time_grid)
from .schedules import (CosineSchedule, DiscreteSchedule, NoiseSchedule,
                        alpha_sigma_from_logsnr, build_schedule, ddpm_betas,
                        logsnr_from_alpha_sigma)
from .steps import (cfg_combine, ddim_step, ddpm_posterior, progressive_target,
                    renoise, renoise_coefficients)

__all__ = [
    'LOSS_WEIGHTINGS', 'PREDICTION_TYPES', 'SAMPLERS', 'CosineSchedule',
    'DiscreteSchedule', 'NoiseSchedule', 'SamplerStep',
    'alpha_sigma_from_logsnr', 'bcast', 'blended_to_x', 'build_schedule',
    'cfg_combine', 'ddim_sample', 'ddim_step', 'ddpm_betas', 'ddpm_posterior',
    'ddpm_sample', 'eps_from_v', 'eps_from_x', 'from_x', 'native_loss_weight',
    'logsnr_from_alpha_sigma', 'progressive_target', 'randn_like',
    'readout_coefficients', 'renoise', 'renoise_coefficients', 'resolve_grid',
    'sample', 'stochastic_sample', 'time_grid', 'to_x', 'v_from_x_eps',
    'x_from_eps', 'x_from_v', 'x_space_weight'
]
