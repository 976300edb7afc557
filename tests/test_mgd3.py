"""MGD3: mode discovery, mode guidance and stop guidance."""
import numpy as np
import pytest
import torch

from mmdistill.diffusion import (CosineSchedule, ddim_sample, ddpm_sample,
                                 time_grid)
from mmdistill.synthesis.guidance import (ModeGuidance, check_guidance_args,
                                          mode_guided_sample,
                                          mode_guided_step, start_index)
from mmdistill.synthesis.modes import GMMModes, KMeansModes, mode_targets
from mmdistill.registry import SYNTHESIS
from mmdistill.utils import UserError


def _blobs(seed=0, n=40):
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 0, 0, 0], [-5.0, 0, 0, 0], [0, 5.0, 0, 0]])
    x = np.concatenate([c + 0.1 * rng.standard_normal((n, 4))
                        for c in centres])
    return torch.from_numpy(x).float().reshape(-1, 1, 2, 2), centres


def test_kmeans_modes_deterministic_and_correct():
    x, centres = _blobs()
    a = KMeansModes(seed=3).fit_class(x, 3)
    b = KMeansModes(seed=3).fit_class(x, 3)
    assert torch.equal(a.modes, b.modes)
    assert np.array_equal(a.nearest, b.nearest)
    assert a.modes.shape == (3, 1, 2, 2)
    # each true blob centre is recovered (to the noise level)
    found = a.modes.reshape(3, -1).numpy()
    for c in centres:
        assert np.abs(found - c).sum(1).min() < 0.2
    # a k-means fixed point: each mode is the mean of its members
    flat = x.reshape(len(x), -1)
    assign = torch.cdist(flat, a.modes.reshape(3, -1)).argmin(1)
    for j in range(3):
        assert torch.allclose(flat[assign == j].mean(0),
                              a.modes[j].reshape(-1), atol=1e-5)
    # nearest[j] is the real sample closest to mode j
    d = torch.cdist(a.modes.reshape(3, -1), flat)
    assert np.array_equal(a.nearest, d.argmin(1).numpy())
    # sizes in descending order, summing to n
    assert a.sizes.sum() == len(x) and list(a.sizes) == sorted(a.sizes)[::-1]


def test_gmm_modes_and_registry():
    x, centres = _blobs()
    md = SYNTHESIS.build(dict(type='GMMModes', seed=0))
    assert isinstance(md, GMMModes)
    a, b = md.fit_class(x, 3), GMMModes(seed=0).fit_class(x, 3)
    assert torch.equal(a.modes, b.modes)
    for c in centres:
        assert np.abs(a.modes.reshape(3, -1).numpy() - c).sum(1).min() < 0.2


def test_modes_per_class_and_ipc_too_large():
    x, _ = _blobs(n=4)  # 12 samples
    labels = np.repeat([0, 1], 6)
    out = KMeansModes()(x, labels, 5, class_names=['a', 'b'])
    assert set(out) == {0, 1} and out[1].modes.shape[0] == 5
    with pytest.raises(UserError, match="ipc=7 is larger than the 6 real "
                       "images of class 'a'"):
        KMeansModes()(x, labels, 7, class_names=['a', 'b'])
    with pytest.raises(UserError, match='positive integer'):
        KMeansModes().fit_class(x, 0)


def test_mode_targets_centre_members_mean_and_medoid():
    x, _ = _blobs(seed=1)
    km = KMeansModes(seed=0).fit_class(x, 3)
    flat = x.reshape(len(x), -1)
    # labels follow the order of the modes: every row's label is its
    # nearest centre
    dist = torch.cdist(flat, km.modes.reshape(3, -1))
    assert np.array_equal(km.labels, dist.argmin(1).numpy())
    # a converged k-means centre is the mean of its members
    mean = mode_targets(km, x, 'members_mean')
    assert torch.allclose(mean, km.modes, atol=1e-6)
    assert torch.equal(mode_targets(km, x, 'centre'), km.modes)
    # the medoid is the real row nearest each centre, taken from the
    # diffusion-space embedding (here another array of the same rows)
    z = torch.randn(len(x), 1, 3, 3)
    med = mode_targets(km, z, 'medoid')
    for j in range(3):
        assert torch.equal(med[j], z[dist[:, j].argmin()])


def test_feature_clusters_give_diffusion_space_targets():
    # the clusters exist only in the feature space; the diffusion space is
    # noise: targets are the means of the diffusion rows of each cluster
    feats, centres = _blobs(seed=2, n=30)
    truth = np.repeat([0, 1, 2], 30)
    z = torch.randn(90, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    md = KMeansModes(seed=0, embedding=dict(type='classifier'))
    assert md.target == 'members_mean'
    cm = md.fit_class(feats, 3)
    got = mode_targets(cm, z, md.target)
    for j in range(3):
        # the true blob of cluster j: the centre cm.modes[j] is nearest to
        blob = np.abs(centres - cm.modes[j].reshape(-1).numpy()).sum(
            1).argmin()
        assert torch.allclose(got[j], z[truth == blob].mean(0), atol=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(embedding=dict(type='classifier'), target='centre'),
     "target='centre' needs embedding='diffusion'"),
    (dict(target='middle'), "target must be one of"),
    (dict(embedding='pixels'), "embedding must be 'diffusion' or a feature"),
])
def test_bad_mode_discovery_arguments(kwargs, match):
    with pytest.raises(UserError, match=match):
        KMeansModes(**kwargs)


def _manual_step(z, x, m, sched, t, s, lam, guide, noise):
    """The MGD3 update written out from the DDPM posterior formulas."""
    a_t, s_t = sched.alpha_sigma(torch.tensor(t))
    a_s, s_s = sched.alpha_sigma(torch.tensor(s))
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2
    mu = a_ts * s_s**2 / s_t**2 * z + a_s * var_ts / s_t**2 * x
    std = (var_ts * s_s**2 / s_t**2).sqrt()
    g = lam * std * (m - x) if guide else 0 * z
    return mu + g + (std * noise if noise is not None else 0)


def test_guided_step_matches_equation():
    sched = CosineSchedule()
    z, x, m, n = torch.randn(4, 4, 1, 3, 3).unbind(0)
    t, s = torch.full((4, ), 0.6), torch.full((4, ), 0.58)
    got, g = mode_guided_step(z, x, m, *sched.alpha_sigma(t),
                              *sched.alpha_sigma(s), 0.1, True, n, 'ddpm')
    want = _manual_step(z, x, m, sched, 0.6, 0.58, 0.1, True, n)
    assert torch.allclose(got, want, atol=1e-5)
    # the guidance term points from x_hat0 to the mode
    assert (g.flatten() * (m - x).flatten()).sum() > 0
    off, g0 = mode_guided_step(z, x, m, *sched.alpha_sigma(t),
                               *sched.alpha_sigma(s), 0.1, False, n, 'ddpm')
    assert torch.allclose(off, _manual_step(z, x, m, sched, 0.6, 0.58, 0.1,
                                            False, n), atol=1e-5)
    assert g0.abs().max() == 0


def test_full_sampler_matches_reference_loop_and_stop_guidance():
    sched, steps, t_stop, lam = CosineSchedule(), 10, 4, 0.3
    z0 = torch.randn(2, 1, 2, 2)
    modes = torch.randn(2, 1, 2, 2)
    x_fn = lambda z, t: 0.5 * z + 0.1  # noqa: E731  (a known denoiser)
    trace = []
    got = mode_guided_sample(x_fn, z0, sched, steps, modes, lam, t_stop,
                             generator=torch.Generator().manual_seed(7),
                             trace=trace)
    # reference: the equation, step by step, same noise stream
    g = torch.Generator().manual_seed(7)
    grid = time_grid(steps).tolist()
    z = z0.clone()
    for i in range(steps):
        k = steps - 1 - i
        noise = torch.randn(z.shape, generator=g) if grid[i + 1] > 0 \
            else None
        z = _manual_step(z, x_fn(z, None), modes, sched, grid[i],
                         grid[i + 1], lam, k > t_stop, noise)
    assert torch.allclose(got, z, atol=1e-4)
    # guidance acts exactly in the steps k > t_stop (k = 9..5 here)
    assert [k for k, gmax in trace if gmax > 0] == list(
        range(steps - 1, t_stop, -1))
    assert [k for k, _ in trace] == list(range(steps - 1, -1, -1))


def _manual_ddim_step(z, x, m, sched, t, s, lam, guide):
    """DDIM step written out, plus g scaled by the DDPM posterior std."""
    a_t, s_t = sched.alpha_sigma(torch.tensor(t))
    a_s, s_s = sched.alpha_sigma(torch.tensor(s))
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2
    std = (var_ts * s_s**2 / s_t**2).sqrt()
    g = lam * std * (m - x) if guide else 0 * z
    return a_s * x + s_s * (z - a_t * x) / s_t + g


@pytest.mark.parametrize('sampler', ['ddpm', 'ddim'])
def test_guided_sampling_from_t_init_matches_reference_loop(sampler):
    sched, steps, t_stop, lam, t_init = CosineSchedule(), 10, 3, 0.4, 0.62
    z0, modes = torch.randn(2, 2, 1, 2, 2).unbind(0)
    x_fn = lambda z, t: torch.tanh(z) - 0.2  # noqa: E731
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    trace = []
    got = mode_guided_sample(x_fn, z0, sched, steps, modes, lam, t_stop,
                             sampler=sampler, generator=gens, t_init=t_init,
                             trace=trace)
    i0 = start_index(steps, t_init)
    assert i0 == 4
    ref_gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    grid = time_grid(steps).tolist()
    z = z0.clone()
    for i in range(i0, steps):
        k, x = steps - 1 - i, x_fn(z, None)
        if sampler == 'ddim':
            z = _manual_ddim_step(z, x, modes, sched, grid[i], grid[i + 1],
                                  lam, k > t_stop)
            continue
        noise = torch.stack([torch.randn(z.shape[1:], generator=g)
                             for g in ref_gens]) if grid[i + 1] > 0 \
            else None
        z = _manual_step(z, x, modes, sched, grid[i], grid[i + 1], lam,
                         k > t_stop, noise)
    assert torch.allclose(got, z, atol=1e-4)
    # the trace starts at the first step taken, k = N - 1 - i0
    assert [k for k, _ in trace] == list(range(steps - 1 - i0, -1, -1))
    assert [k for k, gmax in trace if gmax > 0] == list(
        range(steps - 1 - i0, t_stop, -1))


def test_mode_guidance_hook_on_the_shared_samplers():
    sched, steps, t_stop, lam = CosineSchedule(), 8, 4, 0.3
    z0, modes = torch.randn(2, 3, 1, 2, 2).unbind(0)
    x_fn = lambda z, t: 0.5 * torch.sin(z)  # noqa: E731
    for sampler, loop in (('ddpm', ddpm_sample), ('ddim', ddim_sample)):
        kw = dict(generator=torch.Generator().manual_seed(2)) \
            if sampler == 'ddpm' else {}
        via_hook = loop(x_fn, z0, sched, steps,
                        step_fn=ModeGuidance(modes, lam, t_stop), **kw)
        kw = dict(generator=torch.Generator().manual_seed(2))
        wrapper = mode_guided_sample(x_fn, z0, sched, steps, modes, lam,
                                     t_stop, sampler=sampler, **kw)
        assert torch.equal(via_hook, wrapper)
    # the hook leaves unguided steps alone (k <= t_stop, lam = 0, no modes)
    seen = []
    ddim_sample(x_fn, z0, sched, steps, callback=seen.append,
                step_fn=ModeGuidance(modes, lam, t_stop))
    for st in seen:
        guided = st.k > t_stop
        assert torch.equal(st.z_next, st.update) != guided
    for hook in (ModeGuidance(modes, 0.0, t_stop),
                 ModeGuidance(None, lam, t_stop)):
        assert all(hook(st) is None for st in seen)


def test_no_guidance_equals_plain_ddpm():
    sched = CosineSchedule()
    z0, modes = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    x_fn = lambda z, t: torch.tanh(z)  # noqa: E731
    ref = ddpm_sample(x_fn, z0, sched, 8,
                      generator=torch.Generator().manual_seed(1))
    for kwargs in (dict(lam=0.0, t_stop=4), dict(lam=0.5, t_stop=8)):
        got = mode_guided_sample(x_fn, z0, sched, 8, modes,
                                 generator=torch.Generator().manual_seed(1),
                                 **kwargs)
        assert torch.allclose(got, ref, atol=1e-6)


def test_guidance_pulls_towards_the_mode():
    sched = CosineSchedule()
    z0 = torch.randn(64, 1, 4, 4)
    modes = torch.full_like(z0, 0.8)
    x_fn = lambda z, t: sched.alpha_sigma(t)[0].view(-1, 1, 1, 1) * z  # noqa
    dist = {}
    for lam in (0.0, 0.1, 0.5):
        for sampler in ('ddpm', 'ddim'):
            x = mode_guided_sample(x_fn, z0, sched, 20, modes, lam, 0,
                                   sampler=sampler,
                                   generator=torch.Generator().manual_seed(0))
            dist[lam, sampler] = float((x - modes).pow(2).mean())
    for sampler in ('ddpm', 'ddim'):
        assert dist[0.5, sampler] < dist[0.1, sampler] < dist[0.0, sampler]


@pytest.mark.parametrize('kwargs,match', [
    (dict(lam=-0.1), 'lambda must be >= 0'),
    (dict(t_stop=-1), r't_stop must be an integer in \[0, steps=10\]'),
    (dict(t_stop=11), r't_stop must be an integer in \[0, steps=10\]'),
    (dict(t_stop=2.5), 't_stop must be an integer'),
    (dict(steps=0), 'steps must be a positive integer'),
    (dict(sampler='euler'), "unknown sampler 'euler'"),
])
def test_bad_guidance_arguments(kwargs, match):
    args = {**dict(steps=10, lam=0.1, t_stop=5, sampler='ddpm'), **kwargs}
    with pytest.raises(UserError, match=match):
        check_guidance_args(**args)
    if 'steps' not in kwargs:
        with pytest.raises(UserError, match=match):
            mode_guided_sample(lambda z, t: z, torch.zeros(1, 1, 2, 2),
                               CosineSchedule(), **args)


def test_t_stop_boundaries_are_valid():
    check_guidance_args(10, 0.0, 0)
    check_guidance_args(10, 0.1, 10)
