"""The diffusion math against independent expectations."""
import math

import pytest
import torch

from mmdistill.diffusion import (CosineSchedule, DiscreteSchedule, cfg_combine,
                                 ddim_sample, ddim_step, ddpm_betas,
                                 ddpm_sample, eps_from_v, eps_from_x, from_x,
                                 native_loss_weight, progressive_target,
                                 renoise, stochastic_sample, to_x,
                                 v_from_x_eps, x_from_eps, x_from_v,
                                 x_space_weight)

D = torch.float64


def _ax(t):
    return CosineSchedule().alpha_sigma(t)


def test_cosine_schedule_endpoints_and_identity():
    t = torch.linspace(0, 1, 101, dtype=D)
    a, s = _ax(t)
    assert torch.allclose(a**2 + s**2, torch.ones_like(t))
    assert a[0] == 1 and s[0] == 0
    assert a[-1] == 0 and s[-1] == 1  # SNR exactly 0 at t = 1
    lam = CosineSchedule().logsnr(t)
    assert torch.all(lam[1:] <= lam[:-1])
    assert abs(float(CosineSchedule().logsnr(torch.tensor(0.5, dtype=D)))) \
        < 1e-12  # tan(pi/4) = 1
    # lambda = -2 log tan(pi t / 2)
    tt = torch.tensor([0.1, 0.3, 0.7], dtype=D)
    assert torch.allclose(CosineSchedule().logsnr(tt),
                          -2 * torch.log(torch.tan(math.pi * tt / 2)))


def test_discrete_schedule_hits_alpha_bar_on_grid():
    k = 1000
    betas = ddpm_betas('linear', k)
    alpha_bar = torch.cumprod(1 - betas, 0)
    sch = DiscreteSchedule(betas)
    idx = torch.tensor([0, 1, 10, 499, 998, 999])
    t = (idx + 1).double() / k
    a, s = sch.alpha_sigma(t)
    assert torch.allclose(a**2, alpha_bar[idx], rtol=1e-9, atol=1e-12)
    assert torch.allclose(sch.timestep(t), idx.double())
    a0, _ = sch.alpha_sigma(torch.tensor([0.0], dtype=D))
    assert float(a0) > 0.99999
    # scaled_linear (Stable Diffusion): sqrt(beta) linear
    b = ddpm_betas('scaled_linear', 1000, 0.00085, 0.012)
    assert torch.allclose(b.sqrt().diff(), b.sqrt().diff()[0].expand(999))


@pytest.mark.parametrize('pred', ['x', 'eps', 'v'])
def test_parameterisations_round_trip(pred):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 4, 4, generator=g, dtype=D)
    eps = torch.randn(64, 1, 4, 4, generator=g, dtype=D)
    t = torch.rand(64, generator=g, dtype=D) * 0.98 + 0.01
    a, s = _ax(t)
    z = a.view(-1, 1, 1, 1) * x + s.view(-1, 1, 1, 1) * eps
    v = v_from_x_eps(x, eps, a, s)
    assert torch.allclose(x_from_v(z, v, a, s), x)
    assert torch.allclose(eps_from_v(z, v, a, s), eps)
    assert torch.allclose(x_from_eps(z, eps, a, s), x)
    assert torch.allclose(eps_from_x(z, x, a, s), eps)
    out = from_x(x, z, a, s, pred)
    assert torch.allclose(out, {'x': x, 'eps': eps, 'v': v}[pred])
    assert torch.allclose(to_x(out, z, a, s, pred), x)


@pytest.mark.parametrize('weighting', ['constant', 'snr', 'snr_trunc', 'v_mse'])
@pytest.mark.parametrize('pred', ['x', 'eps', 'v'])
def test_native_weight_equals_x_space_weight(weighting, pred):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 1, 3, 3, generator=g, dtype=D)
    x_hat = x + 0.1 * torch.randn(32, 1, 3, 3, generator=g, dtype=D)
    z = torch.randn(32, 1, 3, 3, generator=g, dtype=D)
    t = torch.rand(32, generator=g, dtype=D) * 0.9 + 0.05
    a, s = _ax(t)
    lhs = x_space_weight(a, s, weighting) * (x_hat - x).pow(2).flatten(1).sum(1)
    p_hat, p = from_x(x_hat, z, a, s, pred), from_x(x, z, a, s, pred)
    rhs = native_loss_weight(a, s, weighting, pred) * (p_hat - p).pow(
        2).flatten(1).sum(1)
    assert torch.allclose(lhs, rhs, rtol=1e-9)


def test_cfg_combine_convention():
    c, u = torch.tensor([2.0]), torch.tensor([1.0])
    assert float(cfg_combine(c, u, 0.0)) == 2.0  # w = 0: conditional
    assert float(cfg_combine(c, u, 2.0)) == 3 * 2 - 2 * 1  # (1+w)c - wu
    # per-sample w broadcasts over the image dims
    cc, uu = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    out = cfg_combine(cc, uu, torch.tensor([0.0, 3.0]))
    assert torch.all(out[0] == 1) and torch.all(out[1] == 4)


# -- Gaussian data: the exact denoiser is known in closed form ----------
M, S = 0.7, 0.4  # data x ~ N(M, S^2)


def gaussian_x_hat(z, t):
    """E[x | z_t] for x ~ N(M, S^2): M + alpha S^2 (z - alpha M) / r^2 with
    r^2 = alpha^2 S^2 + sigma^2."""
    a, s = _ax(t)
    a, s = a.view(-1, 1, 1, 1), s.view(-1, 1, 1, 1)
    return M + a * S**2 * (z - a * M) / (a**2 * S**2 + s**2)


def ddim_gaussian_std(steps):
    """DDIM with the exact denoiser is linear: z_t = alpha_t M + c_t u with
    c_s = c_t (alpha_s alpha_t S^2 + sigma_s sigma_t) / r_t^2, c_1 = 1."""
    grid = torch.linspace(1, 0, steps + 1, dtype=D)
    c = 1.0
    for t, s in zip(grid[:-1], grid[1:]):
        (a_t, s_t), (a_s, s_s) = _ax(t), _ax(s)
        c = c * (a_s * a_t * S**2 + s_s * s_t) / (a_t**2 * S**2 + s_t**2)
    return float(c)


def test_ddim_with_exact_denoiser_maps_noise_to_data_distribution():
    n = 20000
    z = torch.randn(n, 1, 1, 1, generator=torch.Generator().manual_seed(2),
                    dtype=D)
    x = ddim_sample(gaussian_x_hat, z, CosineSchedule(), 200)
    se_mean, se_std = S / math.sqrt(n), S / math.sqrt(2 * n)
    assert abs(float(x.mean()) - M) < 4 * se_mean
    assert abs(float(x.std()) - S) < 4 * se_std + 2e-3
    # the deterministic map is exactly the analytic linear one
    assert torch.allclose(x.flatten(), M + ddim_gaussian_std(200) *
                          z.flatten(), atol=1e-9)
    # and the discretisation error vanishes as steps grow
    # (first order: 4x the steps, about 1/4 of the error)
    errs = [abs(ddim_gaussian_std(n) - S) for n in (16, 64, 256, 1024)]
    for e1, e2 in zip(errs, errs[1:]):
        assert 3.5 < e1 / e2 < 4.5
    assert errs[-1] < 1e-3


@pytest.mark.parametrize('sampler', [ddpm_sample, stochastic_sample])
def test_stochastic_samplers_with_exact_denoiser(sampler):
    n = 20000
    g = torch.Generator().manual_seed(3)
    z = torch.randn(n, 1, 1, 1, generator=g, dtype=D)
    x = sampler(gaussian_x_hat, z, CosineSchedule(), 200, generator=g)
    assert abs(float(x.mean()) - M) < 4 * S / math.sqrt(n)
    assert abs(float(x.std()) - S) < 4 * S / math.sqrt(2 * n) + 5e-3


def test_renoise_matches_forward_marginal():
    n = 40000
    g = torch.Generator().manual_seed(4)
    x = torch.full((n, 1, 1, 1), 0.5, dtype=D)
    u, s = torch.tensor(0.3, dtype=D), torch.tensor(0.6, dtype=D)
    (a_u, s_u), (a_s, s_s) = _ax(u), _ax(s)
    z_u = a_u * x + s_u * torch.randn(x.shape, generator=g, dtype=D)
    z_s = renoise(z_u, a_u, s_u, a_s, s_s,
                  torch.randn(x.shape, generator=g, dtype=D))
    assert abs(float(z_s.mean()) - float(a_s) * 0.5) < 4 * float(
        s_s) / math.sqrt(n)
    assert abs(float(z_s.std()) - float(s_s)) < 0.01


def test_progressive_target_reproduces_two_teacher_steps():
    g = torch.Generator().manual_seed(5)
    z_t = torch.randn(16, 1, 2, 2, generator=g, dtype=D)
    sch = CosineSchedule()
    for t, tpp in [(0.75, 0.5), (0.25, 0.0), (1.0, 0.875)]:
        tt = torch.full((16, ), t, dtype=D)
        tp = torch.full((16, ), (t + tpp) / 2, dtype=D)
        t2 = torch.full((16, ), tpp, dtype=D)
        # two teacher DDIM steps t -> t' -> t''
        z_p = ddim_step(z_t, gaussian_x_hat(z_t, tt), *sch.alpha_sigma(tt),
                        *sch.alpha_sigma(tp))
        z_pp = ddim_step(z_p, gaussian_x_hat(z_p, tp), *sch.alpha_sigma(tp),
                         *sch.alpha_sigma(t2))
        x_tilde = progressive_target(z_t, z_pp, *sch.alpha_sigma(tt),
                                     *sch.alpha_sigma(t2))
        # a student that outputs x~ lands exactly where the teacher landed
        z_student = ddim_step(z_t, x_tilde, *sch.alpha_sigma(tt),
                              *sch.alpha_sigma(t2))
        assert torch.allclose(z_student, z_pp, atol=1e-10)
        if tpp == 0.0:  # last step: the target is the teacher's x_hat
            assert torch.allclose(x_tilde, gaussian_x_hat(z_p, tp))
