"""Stage 1 (GuidanceDistiller): teacher handling, target, zero-init
student, conditioning replacement, sampling, bad input."""
import subprocess
import sys

import pytest
import torch

from mmdistill.diffusion import (CosineSchedule, from_x, native_loss_weight,
                                 x_from_v)
from mmdistill.models.distillers.conditioning import (ClassLabelConditions,
                                                      ConditionReplacer,
                                                      TensorConditions)
from mmdistill.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmdistill.utils import UserError

from _distill_helpers import TINY_NET, randomize, save_teacher, teacher_cfg


def build(tmp_path, **kw):
    ckpt = tmp_path / 'teacher.pth'
    ref = save_teacher(ckpt, kw.pop('prediction_type', 'v'))
    cfg = dict(type='GuidanceDistiller', teacher=teacher_cfg(
        ref.prediction_type), teacher_ckpt=str(ckpt))
    cfg.update(kw)
    return MODELS.build(cfg), ref


def test_teacher_loaded_from_ema_and_frozen(tmp_path):
    m, ref = build(tmp_path)
    for (k, p), q in zip(m.teacher.net.named_parameters(),
                         ref.net_ema.parameters()):
        assert torch.equal(p, q), k  # EMA weights preferred over net.*
        assert not p.requires_grad
    m.train()
    assert not m.teacher.training and m.net.training
    ow = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='TrainableOptimWrapperConstructor',
        optim_wrapper_cfg=dict(type='OptimWrapper',
                               optimizer=dict(type='Adam', lr=1e-3))))(m)
    in_opt = {id(p) for g in ow.optimizer.param_groups for p in g['params']}
    assert in_opt == {id(p) for p in m.net.parameters()}
    ignored = set(m.ddp_ignored_names())
    assert {f'teacher.{n}' for n, _ in m.teacher.named_parameters()} \
        <= ignored
    assert not any(n.startswith('net.') for n in ignored)


def test_paramwise_lr_mult_groups(tmp_path):
    """custom_keys lr_mult: the w-embedding gets 10x the lr, the rest the
    base lr, the frozen teacher nothing, in two param groups."""
    m, _ = build(tmp_path)
    ow = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='TrainableOptimWrapperConstructor',
        optim_wrapper_cfg=dict(type='OptimWrapper',
                               optimizer=dict(type='Adam', lr=1e-3)),
        paramwise_cfg=dict(custom_keys=dict(
            guidance_emb=dict(lr_mult=10.0)))))(m)
    groups = ow.optimizer.param_groups
    assert len(groups) == 2
    emb = {id(p) for p in m.net.guidance_emb.parameters()}
    fast, slow = sorted(groups, key=lambda g: -g['lr'])
    assert fast['lr'] == pytest.approx(1e-2) and slow['lr'] == 1e-3
    assert {id(p) for p in fast['params']} == emb
    assert {id(p) for p in slow['params']} == \
        {id(p) for p in m.net.parameters()} - emb


def test_fresh_student_equals_conditional_teacher(tmp_path):
    m, _ = build(tmp_path)
    z = torch.randn(6, 1, 8, 8)
    t = torch.rand(6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    w = torch.tensor([0., .5, 1., 2., 3., 4.])
    # the w-embedding is zero-initialised: any w gives the teacher's x_c
    assert torch.equal(m.net(z, t, y, w), m.teacher.net(z, t, y))
    assert m.net.guidance_emb is not None and m.teacher.net.guidance_emb \
        is None


def test_stage1_target_is_cfg_combination(tmp_path):
    m, _ = build(tmp_path)
    sched = CosineSchedule()
    z, t = torch.randn(4, 1, 8, 8), torch.rand(4) * 0.9 + 0.05
    y, w = torch.tensor([0, 1, 2, 1]), torch.tensor([0., 1., 2.5, 4.])
    a, s = sched.alpha_sigma(t)
    null = torch.full_like(y, 3)
    net = m.teacher.net
    # independent: two separate calls, v -> x by hand
    x_c = x_from_v(z, net(z, t, y), a, s)
    x_u = x_from_v(z, net(z, t, null), a, s)
    expect = x_c + w.view(-1, 1, 1, 1) * (x_c - x_u)
    got = m.teacher_target(z, t, y, w)
    assert torch.allclose(got, expect, atol=1e-5)


@pytest.mark.parametrize('pred', ['v', 'eps', 'x'])
def test_stage1_loss_matches_manual(tmp_path, pred):
    m, _ = build(tmp_path, prediction_type=pred,
                 loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'))
    randomize(m.net.guidance_emb, seed=3)
    x, y = torch.randn(5, 1, 8, 8).clamp(-1, 1), torch.tensor([0, 1, 2, 0, 1])
    torch.manual_seed(7)
    loss = m.loss(x, y)['loss']
    torch.manual_seed(7)
    b = 5
    t = torch.rand(b) * (1 - m.t_min) + m.t_min
    w = torch.rand(b) * 4.0
    eps = torch.randn_like(x)
    a, s = m.schedule.alpha_sigma(t)
    z = a.view(-1, 1, 1, 1) * x + s.view(-1, 1, 1, 1) * eps
    target = from_x(m.teacher_target(z, t, y, w), z, a, s, pred)
    per = (m.net(z, t, y, w) - target).pow(2).flatten(1).mean(1)
    # snr_trunc: max(SNR, 1) ||x - x_hat||^2, expressed natively
    expect = (native_loss_weight(a, s, 'snr_trunc', pred) * per).mean()
    assert torch.allclose(loss, expect, rtol=1e-5)


def test_paired_teacher_routes_null_to_uncond(tmp_path):
    ckpt_c, ckpt_u = tmp_path / 'c.pth', tmp_path / 'u.pth'
    c = save_teacher(ckpt_c, seed=0)
    u = save_teacher(ckpt_u, seed=10)
    m = MODELS.build(dict(type='GuidanceDistiller', teacher=teacher_cfg(),
                          teacher_ckpt=str(ckpt_c),
                          uncond_teacher_ckpt=str(ckpt_u)))
    z, t = torch.randn(4, 1, 8, 8), torch.rand(4)
    y = torch.tensor([0, 3, 1, 3])
    out = m.teacher.net(z, t, y)
    assert torch.allclose(out[[0, 2]], c.net_ema(z[[0, 2]], t[[0, 2]],
                                                 y[[0, 2]]), atol=1e-6)
    assert torch.allclose(out[[1, 3]], u.net_ema(z[[1, 3]], t[[1, 3]],
                                                 y[[1, 3]]), atol=1e-6)
    # the student starts from the conditional network
    assert torch.equal(m.net(z, t, torch.zeros(4).long()),
                       c.net_ema(z, t, torch.zeros(4).long()))


def test_sample_one_eval_per_step(tmp_path):
    m, _ = build(tmp_path)
    calls = []
    m.net_ema.register_forward_hook(lambda *a: calls.append(1))
    for sampler in ('ddim', 'stochastic'):
        calls.clear()
        out = m.sample(torch.tensor([0, 1, 2]), steps=4, guidance=2.0,
                       sampler=sampler, generator=torch.Generator()
                       .manual_seed(0))
        assert out.shape == (3, 1, 8, 8) and len(calls) == 4
        assert out.abs().max() <= 1


def test_teacher_mismatch_and_w_range(tmp_path):
    ckpt = tmp_path / 'teacher.pth'
    save_teacher(ckpt)
    wide = teacher_cfg()
    wide['denoiser'] = dict(TINY_NET, base_channels=16)
    with pytest.raises(UserError, match='does not match'):
        MODELS.build(dict(type='GuidanceDistiller', teacher=wide,
                          teacher_ckpt=str(ckpt)))
    with pytest.raises(UserError, match='w_min'):
        MODELS.build(dict(type='GuidanceDistiller', teacher=teacher_cfg(),
                          w_min=3.0, w_max=1.0))


def test_train_cli_one_line_error(tmp_path, repo_root):
    r = subprocess.run(
        [sys.executable, 'tools/train.py',
         'configs/guided_distill/guided_distill_digits.py', '--work-dir',
         str(tmp_path), '--cfg-options', 'model.w_min=5', 'model.w_max=1'],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error:') and 'w_min' in last


def test_condition_replacement_probabilities():
    prov = ClassLabelConditions(10)
    rep = ConditionReplacer(prov, p_drop=0.2, p_replace=0.3)
    y = torch.randint(0, 10, (20000, ))
    out = rep(y, generator=torch.Generator().manual_seed(0))
    null = out == 10
    changed = (out != y) & ~null
    same = out == y
    # binomial std ~ 0.003: 4 sigma tolerances
    assert abs(null.float().mean() - 0.2) < 0.013
    assert abs(changed.float().mean() - 0.3) < 0.013
    assert abs(same.float().mean() - 0.5) < 0.013
    # replaced labels are uniform over the 9 other classes
    diff = (out[changed] - y[changed]) % 10
    counts = torch.bincount(diff, minlength=10).float()
    assert counts[0] == 0
    assert (counts[1:] / counts[1:].sum() - 1 / 9).abs().max() < 0.02
    assert torch.equal(ConditionReplacer(prov)(y), y)
    with pytest.raises(UserError):
        ConditionReplacer(prov, p_drop=0.7, p_replace=0.5)


def test_cfg_model_conditions_come_from_its_provider():
    """null_condition / random_condition of CFGDiffusion are those of its
    condition_provider(): random is any class (own class included), other
    a class different from the sample's own."""
    m = MODELS.build(teacher_cfg())
    prov = m.condition_provider()
    assert isinstance(prov, ClassLabelConditions) and prov.num_classes == 3
    y = torch.randint(0, 3, (3000, ), generator=torch.Generator()
                      .manual_seed(0))
    assert torch.equal(m.null_condition(y), torch.full_like(y, 3))
    rnd = m.random_condition(y, torch.Generator().manual_seed(1))
    assert torch.equal(rnd, prov.random(y, torch.Generator().manual_seed(1)))
    assert torch.equal(rnd, torch.randint(
        0, 3, y.shape, generator=torch.Generator().manual_seed(1)))
    assert (rnd == y).any() and rnd.max() < 3
    other = prov.other(y, torch.Generator().manual_seed(1))
    assert not (other == y).any() and other.max() < 3
    # the distiller's replacement uses the teacher's provider
    d = MODELS.build(dict(type='GuidanceDistiller', teacher=teacher_cfg(),
                          p_replace=0.5))
    assert isinstance(d.replacer.provider, ClassLabelConditions)


def test_condition_replacement_on_embeddings():
    null = torch.zeros(1, 4)
    cond = torch.arange(1, 6).float()[:, None].repeat(1, 4)[:, None]  # B,1,4
    rep = ConditionReplacer(TensorConditions(null[None]), p_drop=0.0,
                            p_replace=1.0)
    out = rep(cond, generator=torch.Generator().manual_seed(1))
    assert out.shape == cond.shape
    assert not (out == cond).all(-1).any()  # every row another sample's
    rep = ConditionReplacer(TensorConditions(null[None]), p_drop=1.0)
    assert (rep(cond) == 0).all()


def test_replaced_condition_reaches_teacher_and_student(tmp_path):
    m, _ = build(tmp_path, p_drop=1.0)
    seen = []
    m.teacher.net.register_forward_pre_hook(
        lambda mod, args: seen.append(args[2].clone()))
    m.net.register_forward_pre_hook(
        lambda mod, args: seen.append(args[2].clone()))
    m.loss(torch.zeros(3, 1, 8, 8), torch.tensor([0, 1, 2]))
    assert all((s == 3).all() for s in seen) and len(seen) == 2
