"""Non-finite losses: ``SafeOptimWrapper`` skips the update, counts it, and
stops with a one-line error after ``max_consecutive`` non-finite steps in a
row; weights and checkpoints stay finite."""
import os
import re
import uuid

import pytest
import torch

from _reliability import ROOT, SMALL, TEACHER, TINY_UNET
from mmdistill.models.cfg_diffusion import CFGDiffusion
from mmdistill.registry import MODELS


@MODELS.register_module(force=True)
class NaNLossDiffusion(CFGDiffusion):
    """The teacher, with a NaN loss at 1-based iterations
    ``nan_from <= it <= nan_until``."""

    def __init__(self, *args, nan_from=0, nan_until=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.nan_from, self.nan_until = nan_from, nan_until

    def loss(self, x, y):
        out = super().loss(x, y)
        it = int(self.num_updates) + 1
        if self.nan_from <= it <= self.nan_until:
            out['loss'] = out['loss'] * float('nan')
        return out


def _runner(wd, wrapper, nan_from, nan_until, max_iters, **wrapper_kw):
    from mmdistill.apis import load_config
    from mmdistill.engine import DistillRunner
    cfg = load_config(os.path.join(ROOT, TEACHER), SMALL + [TINY_UNET])
    cfg.model.type = 'NaNLossDiffusion'
    cfg.model.update(nan_from=nan_from, nan_until=nan_until)
    cfg.optim_wrapper.type = wrapper
    if wrapper != 'SafeOptimWrapper':  # the default runtime's extra option
        cfg.optim_wrapper.pop('max_consecutive', None)
    cfg.optim_wrapper.update(wrapper_kw)
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.work_dir = str(wd)
    cfg.experiment_name = f'nan{uuid.uuid4().hex[:10]}'
    return DistillRunner.from_cfg(cfg)


def _net(path):
    sd = torch.load(path, weights_only=True)['state_dict']
    return {k: v for k, v in sd.items() if k.startswith('net.')}


def _finite(sd):
    return all(bool(torch.isfinite(v.float()).all()) for v in sd.values())


def test_one_nan_step_is_skipped_and_counted(tmp_path):
    r = _runner(tmp_path / 'safe', 'SafeOptimWrapper', 3, 3, 5)
    r.train()
    assert r.message_hub.get_scalar('train/nonfinite_skips').current() == 1
    assert r.optim_wrapper.nonfinite_skips == 1
    assert r.optim_wrapper.nonfinite_streak == 0  # training went on
    a, b, c = (_net(tmp_path / 'safe' / f'iter_{i}.pth') for i in (2, 3, 4))
    for k in a:  # the skipped step 3 changed nothing, step 4 did
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(b[k], c[k]) for k in b)
    assert _finite(_net(tmp_path / 'safe' / 'iter_5.pth'))
    # control: the plain OptimWrapper lets the same NaN into the weights
    r = _runner(tmp_path / 'plain', 'OptimWrapper', 3, 3, 4)
    r.train()
    assert not _finite(_net(tmp_path / 'plain' / 'iter_4.pth'))


def test_consecutive_nan_steps_stop_training(tmp_path):
    from mmdistill.utils import UserError
    wd = tmp_path / 'run'
    r = _runner(wd, 'SafeOptimWrapper', 3, 10**6, 20, max_consecutive=3)
    with pytest.raises(UserError) as e:
        r.train()
    msg = str(e.value)
    assert '\n' not in msg and '3 consecutive steps' in msg
    assert 'last checkpoint is untouched' in msg
    # iterations 3, 4, 5 were non-finite: stopped in 5, before its checkpoint
    assert not (wd / 'iter_5.pth').exists()
    assert open(wd / 'last_checkpoint').read().strip().endswith('iter_4.pth')
    good = _net(wd / 'iter_2.pth')
    for i in (3, 4):
        ck = _net(wd / f'iter_{i}.pth')
        assert _finite(ck)
        for k in good:
            assert torch.equal(good[k], ck[k]), (i, k)


def test_max_consecutive_must_be_positive():
    from mmdistill.engine.optim_wrapper import SafeOptimWrapper
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match='max_consecutive'):
        SafeOptimWrapper(optimizer=opt, max_consecutive=0)


def test_skip_counter_survives_resume():
    from mmdistill.engine.optim_wrapper import SafeOptimWrapper
    p = torch.nn.Parameter(torch.ones(2))
    ow = SafeOptimWrapper(optimizer=torch.optim.SGD([p], lr=0.1))
    ow.update_params((p * float('inf')).sum())
    ow.update_params((p * 1.0).sum())
    assert ow.nonfinite_skips == 1
    assert torch.allclose(p.detach(), torch.full((2, ), 0.9))  # one step
    ow2 = SafeOptimWrapper(optimizer=torch.optim.SGD([p], lr=0.1))
    ow2.load_state_dict(ow.state_dict())
    assert ow2.nonfinite_skips == 1


def test_amp_wrapper_skips_nonfinite_loss_and_stops(monkeypatch):
    """``--amp`` keeps the guard: a NaN loss is skipped, counted, and stops
    training after max_consecutive (GradScaler disabled on the CPU, so the
    finite step is plain SGD)."""
    import warnings

    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp

    from mmdistill.engine.optim_wrapper import SafeAmpOptimWrapper
    from mmdistill.registry import OPTIM_WRAPPERS
    from mmdistill.utils import UserError
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    p = torch.nn.Parameter(torch.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # GradScaler: CUDA not available
        ow = OPTIM_WRAPPERS.build(dict(
            type='SafeAmpOptimWrapper', max_consecutive=2,
            optimizer=torch.optim.SGD([p], lr=0.1)))
    assert isinstance(ow, SafeAmpOptimWrapper) and not ow.check_grads
    ow.update_params((p * 1.0).sum())
    assert torch.allclose(p.detach(), torch.full((2, ), 0.9))
    ow.update_params((p * float('nan')).sum())
    assert ow.nonfinite_skips == 1
    assert p.grad is None or not p.grad.any()
    with pytest.raises(UserError, match='2 consecutive steps'):
        ow.update_params((p * float('inf')).sum())
    assert torch.allclose(p.detach(), torch.full((2, ), 0.9))
    state = ow.state_dict()
    assert state['nonfinite_skips'] == 2 and 'loss_scaler' in state


# -- finite divergence --------------------------------------------------------
def _guarded(p, lr, **kw):
    from mmdistill.engine.optim_wrapper import SafeOptimWrapper
    return SafeOptimWrapper(optimizer=torch.optim.SGD([p], lr=lr), **kw)


def test_loss_spike_stops_before_the_step():
    """After ``warmup`` steps a loss ``factor`` times its running median
    stops training before the update; 3x fluctuations do not."""
    from mmdistill.utils import UserError
    p = torch.nn.Parameter(torch.ones(4))
    ow = _guarded(p, 1e-3, divergence=dict(warmup=3, factor=50.0))
    for s in (1.0, 2.0, 1.5, 3.0):  # losses 4, 8, 6, 12 (median 7)
        ow.update_params((p * s).sum())
    before = p.detach().clone()
    with pytest.raises(UserError) as e:
        ow.update_params((p * 1000.0).sum())  # loss 4000 > 50 x 7
    msg = str(e.value)
    assert '\n' not in msg and 'training diverged' in msg
    # p moved by the four small SGD steps: losses ~4, 8, 6, 12, then ~4000
    assert re.search(r'the loss 3\.9\de\+03 is 5\d\dx its running median '
                     r'6\.9', msg), msg
    assert torch.equal(p.detach(), before)


def test_gradient_norm_spike_stops_before_the_step():
    from mmdistill.utils import UserError
    p = torch.nn.Parameter(torch.ones(4))
    ow = _guarded(p, 1e-3, divergence=dict(warmup=2))
    for _ in range(3):
        ow.update_params((p * 1.0).sum())  # gradient norm 2
    before = p.detach().clone()
    big = (p * 1e4).sum()
    with pytest.raises(UserError, match=r'gradient norm 2e\+04 is 10000x'):
        ow.update_params(big - big.detach() + 4.0)  # same loss, huge grad
    assert torch.equal(p.detach(), before)


def test_weight_blow_up_stops_in_the_same_step():
    """A learning rate far too large blows the weights up in the first
    step, before any history: the growth check stops the run in that
    iteration; without the check the weights are kept."""
    from mmdistill.utils import UserError
    p = torch.nn.Parameter(torch.full((4, ), 0.1))
    with pytest.raises(UserError, match='multiplied the weight norm by 1e'):
        _guarded(p, 1e6).update_params(p.sum())
    q = torch.nn.Parameter(torch.full((4, ), 0.1))
    _guarded(q, 1e6, divergence=None).update_params(q.sum())
    assert q.detach().abs().min() > 1e5
    # zero-initialised weights may grow by any factor
    z = torch.nn.Parameter(torch.zeros(4))
    ow = _guarded(z, 1e-3)
    for _ in range(3):
        ow.update_params(z.sum())
    assert torch.allclose(z.detach(), torch.full((4, ), -3e-3))


def test_divergence_settings_are_checked():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match='unknown divergence keys'):
        _guarded(p, 0.1, divergence=dict(facter=10))
    with pytest.raises(ValueError, match='factor > 1'):
        _guarded(p, 0.1, divergence=dict(factor=0.5))


def test_divergence_history_survives_resume():
    p = torch.nn.Parameter(torch.ones(2))
    ow = _guarded(p, 0.1)
    for s in (1.0, 2.0):
        ow.update_params((p * s).sum())
    ow2 = _guarded(torch.nn.Parameter(torch.ones(2)), 0.1)
    ow2.load_state_dict(ow.state_dict())
    assert list(ow2._history['loss']) == list(ow._history['loss'])
    assert list(ow2._history['grad_norm']) == pytest.approx(
        [2 ** 0.5, 2 * 2 ** 0.5])


def test_lr_1e6_stops_before_a_checkpoint_keeps_diverged_weights(tmp_path):
    """The reported case: learning rate 1e6 on the digits teacher, a
    checkpoint every iteration. The run stops in its first iteration with
    the one-line error and writes no checkpoint; with the check off the
    same run saves blown-up weights."""
    from _reliability import assert_one_line_error, run_train_inprocess
    wd = tmp_path / 'guarded'
    code, err = run_train_inprocess(TEACHER, wd,
                                    'optim_wrapper.optimizer.lr=1000000.0',
                                    'train_cfg.max_iters=3')
    assert_one_line_error(code, err, 'training diverged at iteration 1',
                          'weight norm')
    assert not list(wd.rglob('iter_*.pth'))
    wd = tmp_path / 'unguarded'
    code, err = run_train_inprocess(TEACHER, wd,
                                    'optim_wrapper.optimizer.lr=1000000.0',
                                    'optim_wrapper.divergence=None',
                                    'train_cfg.max_iters=1')
    sd = _net(wd / 'iter_1.pth')
    assert max(float(v.float().abs().max()) for v in sd.values()) > 1e2


def test_new_phase_resets_the_loss_history():
    """A halving changes the target: the 1-step stage's first losses can be
    100x the 2-step stage's, which must not read as divergence."""
    p = torch.nn.Parameter(torch.ones(4))
    ow = _guarded(p, 1e-4, divergence=dict(warmup=3))
    for _ in range(5):
        ow.update_params((p * 0.001).sum())
    ow.reset_divergence_history()
    ow.update_params((p * 1.0).sum())  # 1000x the old median: no stop
    assert list(ow._history['loss']) == pytest.approx([4.0], rel=1e-3)
