"""Composable samplers: explicit time grids, step_fn hooks and callbacks."""
import pytest
import torch

from mmdistill.diffusion import (CosineSchedule, DiscreteSchedule,
                                 SamplerStep, ddim_sample, ddim_step,
                                 ddpm_posterior, ddpm_sample, renoise,
                                 resolve_grid, sample, stochastic_sample,
                                 time_grid)

D = torch.float64
SCHEDULES = [CosineSchedule(), DiscreteSchedule(num_train_timesteps=200)]
GRID = [1.0, 0.93, 0.71, 0.5, 0.22, 0.05, 0.0]  # non-uniform, 6 steps


def x_fn(z, t):
    """A fixed nonlinear denoiser depending on z and t."""
    return torch.tanh(0.8 * z + t.view(-1, 1, 1, 1)) - 0.3 * t.view(
        -1, 1, 1, 1)**2


def _z(seed=0, b=3):
    return torch.randn(b, 1, 3, 3, dtype=D,
                       generator=torch.Generator().manual_seed(seed))


def _gens(b=3, seed=10):
    return [torch.Generator().manual_seed(seed + j) for j in range(b)]


def _ab(schedule, t, z):
    return schedule.alpha_sigma(torch.full((len(z), ), t, dtype=D))


@pytest.mark.parametrize('name', ['ddim', 'ddpm', 'stochastic'])
@pytest.mark.parametrize('grid', [None, GRID])
def test_callback_sees_every_step_of_the_grid(name, grid):
    seen = []
    z0 = _z()
    out = sample(name, x_fn, z0, CosineSchedule(),
                 steps=None if grid else 5, generator=_gens(), grid=grid,
                 callback=seen.append)
    want = time_grid(5).tolist() if grid is None else GRID
    n = len(want) - 1
    assert [st.i for st in seen] == list(range(n))
    assert [st.k for st in seen] == list(range(n - 1, -1, -1))
    for st, t, s in zip(seen, want[:-1], want[1:]):
        assert isinstance(st, SamplerStep)
        assert torch.equal(st.t, torch.full((3, ), t, dtype=D))
        assert torch.equal(st.s, torch.full((3, ), s, dtype=D))
        assert torch.equal(st.x_hat, x_fn(st.z, st.t))
    # the steps chain: each starts where the previous one landed
    assert torch.equal(seen[0].z, z0)
    for a, b in zip(seen, seen[1:]):
        assert b.z is a.z_next
    assert seen[-1].z_next is out
    # deterministic steps carry no noise scale
    if name == 'ddim':
        assert all(st.std is None for st in seen)
    else:
        assert [st.std is None for st in seen] == [False] * (n - 1) + [True]


@pytest.mark.parametrize('schedule', SCHEDULES)
def test_ddim_on_explicit_grid_is_ddim_step_by_step(schedule):
    z0 = _z(1)
    got = ddim_sample(x_fn, z0, schedule, grid=GRID)
    z = z0
    for t, s in zip(GRID[:-1], GRID[1:]):
        x = x_fn(z, torch.full((3, ), t, dtype=D))
        z = ddim_step(z, x, *_ab(schedule, t, z), *_ab(schedule, s, z))
    assert torch.equal(got, z)
    # a last step to t = 0 (sigma = 0 for the cosine schedule; the discrete
    # one clips log-SNR at 20) returns the denoiser's estimate there
    if isinstance(schedule, CosineSchedule):
        assert torch.allclose(got, x, atol=1e-12)


@pytest.mark.parametrize('schedule', SCHEDULES)
def test_ddpm_on_explicit_grid_matches_posterior_sampling(schedule):
    z0 = _z(2)
    got = ddpm_sample(x_fn, z0, schedule, generator=_gens(), grid=GRID)
    gens = _gens()
    z = z0
    for t, s in zip(GRID[:-1], GRID[1:]):
        x = x_fn(z, torch.full((3, ), t, dtype=D))
        mean, std = ddpm_posterior(z, x, *_ab(schedule, t, z),
                                   *_ab(schedule, s, z))
        if s > 0:
            noise = torch.stack([torch.randn(z.shape[1:], generator=g,
                                             dtype=D) for g in gens])
            z = mean + std * noise
        else:
            z = mean
    assert torch.allclose(got, z, atol=1e-12)
    # noise was drawn for the 5 steps with s > 0 only
    used = _gens()
    ddpm_sample(x_fn, z0, schedule, generator=used, grid=GRID)
    fresh = _gens()
    for g in fresh:
        for _ in range(len(GRID) - 2):
            torch.randn((1, 3, 3), generator=g, dtype=D)
    for a, b in zip(used, fresh):
        assert torch.equal(a.get_state(), b.get_state())


def test_stochastic_on_explicit_grid_is_double_step_and_renoise():
    sched = CosineSchedule()
    z0 = _z(3)
    got = stochastic_sample(x_fn, z0, sched,
                            generator=torch.Generator().manual_seed(4),
                            grid=GRID)
    g = torch.Generator().manual_seed(4)
    z = z0
    for j in range(len(GRID) - 1):
        t = GRID[j]
        x = x_fn(z, torch.full((3, ), t, dtype=D))
        if j == len(GRID) - 2:
            z = ddim_step(z, x, *_ab(sched, t, z), *_ab(sched, GRID[-1], z))
            break
        u, s = GRID[j + 2], GRID[j + 1]
        z_u = ddim_step(z, x, *_ab(sched, t, z), *_ab(sched, u, z))
        z = renoise(z_u, *_ab(sched, u, z), *_ab(sched, s, z),
                    torch.randn(z.shape, generator=g, dtype=D))
    assert torch.allclose(got, z, atol=1e-12)


@pytest.mark.parametrize('name', ['ddim', 'ddpm', 'stochastic'])
@pytest.mark.parametrize('schedule', SCHEDULES)
def test_noop_hooks_and_explicit_uniform_grid_leave_results_identical(
        name, schedule):
    z0 = _z(5)
    ref = sample(name, x_fn, z0, schedule, 7, generator=_gens())
    same = [
        sample(name, x_fn, z0, schedule, 7, generator=_gens(),
               step_fn=lambda st: None),
        sample(name, x_fn, z0, schedule, 7, generator=_gens(),
               step_fn=lambda st: st.update, callback=lambda st: None),
        sample(name, x_fn, z0, schedule, generator=_gens(),
               grid=time_grid(7)),
        sample(name, x_fn, z0, schedule, 7, generator=_gens(),
               grid=time_grid(7).tolist()),
    ]
    for out in same:
        assert torch.equal(out, ref)
    # t_start still sets the uniform grid
    part = sample(name, x_fn, z0, schedule, 4, generator=_gens(),
                  t_start=0.6)
    assert torch.equal(part, sample(name, x_fn, z0, schedule,
                                    generator=_gens(),
                                    grid=time_grid(4, 0.6)))


def test_step_fn_changes_the_update_before_the_noise():
    sched, c = CosineSchedule(), 0.25
    z0 = _z(6)

    def shift(st):
        return st.update + c if st.k >= 2 else None

    got = ddpm_sample(x_fn, z0, sched, 5, generator=_gens(), step_fn=shift)
    gens, grid = _gens(), time_grid(5).tolist()
    z = z0
    for i, (t, s) in enumerate(zip(grid[:-1], grid[1:])):
        x = x_fn(z, torch.full((3, ), t, dtype=D))
        mean, std = ddpm_posterior(z, x, *_ab(sched, t, z),
                                   *_ab(sched, s, z))
        if 5 - 1 - i >= 2:
            mean = mean + c
        if s > 0:
            mean = mean + std * torch.stack([torch.randn(
                (1, 3, 3), generator=g, dtype=D) for g in gens])
        z = mean
    assert torch.allclose(got, z, atol=1e-12)
    # DDIM: the shift lands in z_s directly
    seen = []
    ddim_sample(x_fn, z0, sched, 5, step_fn=shift, callback=seen.append)
    for st in seen:
        delta = st.z_next - st.update
        assert torch.allclose(delta, torch.full_like(delta, c if st.k >= 2
                                                     else 0.0))


@pytest.mark.parametrize('kwargs,match', [
    (dict(), 'give the number of steps or a time grid'),
    (dict(grid=[1.0]), 'at least 2 times'),
    (dict(grid=[[1.0, 0.0]]), 'a 1-D sequence'),
    (dict(grid=[1.0, 0.5, 0.5, 0.0]), 'strictly decreasing'),
    (dict(grid=[0.0, 0.5, 1.0]), 'strictly decreasing'),
    (dict(grid=[1.5, 0.5, 0.0]), r'within \[0, 1\]'),
    (dict(grid=[1.0, 0.5, -0.1]), r'within \[0, 1\]'),
    (dict(steps=3, grid=[1.0, 0.5, 0.0]), 'steps=3 does not match'),
    (dict(t_start=0.8, grid=[0.8, 0.0]), 'leave it unset'),
    (dict(steps=0), 'positive integer'),
])
def test_bad_grids(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resolve_grid(**kwargs)
    with pytest.raises(ValueError, match=match):
        ddim_sample(x_fn, _z(), CosineSchedule(), **kwargs)


def test_resolve_grid_keeps_the_given_times():
    grid = resolve_grid(steps=6, grid=torch.tensor(GRID, dtype=torch.float32))
    assert grid.dtype == D and grid.tolist() == torch.tensor(
        GRID, dtype=torch.float32).double().tolist()
    assert torch.equal(resolve_grid(4, 0.5), time_grid(4, 0.5))
