"""Stage 2 (ProgressiveDistiller + ProgressiveDistillationHook)."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from mmdistill.diffusion import (CosineSchedule, ddim_step, from_x,
                                 native_loss_weight, x_from_v)
from mmdistill.engine.hooks.progressive_distillation import (
    ProgressiveDistillationHook, halving_stages)
from mmdistill.registry import MODELS
from mmdistill.utils import UserError

from _distill_helpers import TINY_NET, randomize


def student_cfg(num_classes=3):
    return dict(TINY_NET, num_classes=num_classes, guidance_embed=True)


def save_stage1(path, num_classes=3, seed=0):
    net = randomize(MODELS.build(student_cfg(num_classes)), seed=seed)
    torch.save({'state_dict': {f'net.{k}': v for k, v in
                               net.state_dict().items()}}, path)
    return net


def build(tmp_path, num_steps=4, **kw):
    ref = save_stage1(tmp_path / 's1.pth')
    m = MODELS.build(dict(type='ProgressiveDistiller', student=student_cfg(),
                          teacher_ckpt=str(tmp_path / 's1.pth'),
                          num_classes=3, image_shape=(1, 8, 8),
                          num_steps=num_steps, **kw))
    return m, ref


def test_teacher_and_student_start_from_stage1(tmp_path):
    m, ref = build(tmp_path)
    for p, q, r in zip(m.net.parameters(), m.teacher.net.parameters(),
                       ref.parameters()):
        assert torch.equal(p, r) and torch.equal(q, r)
        assert p.requires_grad and not q.requires_grad
    assert int(m.num_steps) == 4 and 'num_steps' in m.state_dict()


def test_target_reproduces_two_teacher_ddim_steps(tmp_path):
    m, ref = build(tmp_path)
    sched = CosineSchedule()
    n = 4
    t = torch.tensor([1.0, 0.75, 0.5, 0.25])
    z = torch.randn(4, 1, 8, 8)
    y, w = torch.tensor([0, 1, 2, 3]), torch.tensor([0., 1., 2., 4.])

    def x_teacher(zz, tt):  # independent: the stage-1 net, v -> x by hand
        return x_from_v(zz, ref(zz, tt, y, w), *sched.alpha_sigma(tt))

    t1, t2 = t - 0.5 / n, t - 1.0 / n
    z1 = ddim_step(z, x_teacher(z, t), *sched.alpha_sigma(t),
                   *sched.alpha_sigma(t1))
    z2 = ddim_step(z1, x_teacher(z1, t1), *sched.alpha_sigma(t1),
                   *sched.alpha_sigma(t2))
    got_z2, got_t2 = m.teacher_two_steps(z, t, y, w, n)
    assert torch.allclose(got_z2, z2, atol=1e-5)
    from mmdistill.diffusion import progressive_target
    x_tilde = progressive_target(z, got_z2, *sched.alpha_sigma(t),
                                 *sched.alpha_sigma(got_t2))
    # a student that outputs x~ lands where the teacher's two steps land
    one = ddim_step(z, x_tilde, *sched.alpha_sigma(t),
                    *sched.alpha_sigma(t2))
    assert torch.allclose(one, z2, atol=1e-4)
    # last step (t'' = 0): x~ is the teacher's x_hat at t' = 1/(2N)
    assert torch.allclose(x_tilde[3], x_teacher(z1, t1)[3], atol=1e-5)


def test_loss_zero_for_student_outputting_target(tmp_path):
    m, _ = build(tmp_path)
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    captured = {}
    orig = m.teacher_two_steps

    def spy(z, t, y_, w, n):
        out = orig(z, t, y_, w, n)
        captured.update(z=z, t=t, out=out)
        return out

    m.teacher_two_steps = spy
    from mmdistill.diffusion import progressive_target

    class Oracle(torch.nn.Module):
        def forward(self, z, t, y_, w):
            a, s = m.schedule.alpha_sigma(t)
            z2, t2 = captured['out']
            xt = progressive_target(z, z2, a, s, *m.schedule.alpha_sigma(t2))
            return from_x(xt, z, a, s, m.prediction_type)

    m.net = Oracle()
    loss = m.loss(x, y)['loss']
    assert float(loss) < 1e-10
    # t is on the student grid {i/N}
    t = captured['t']
    assert torch.allclose(t * 4, (t * 4).round()) and t.min() > 0


def test_loss_weighting_matches_manual(tmp_path):
    m, _ = build(tmp_path, loss=dict(type='GuidedOutputL2Loss',
                                     weighting='v_mse'))
    x, y = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    torch.manual_seed(3)
    loss = m.loss(x, y)['loss']
    torch.manual_seed(3)
    i = torch.randint(1, 5, (5, ))
    t = i.float() / 4
    w = torch.rand(5) * 4
    eps = torch.randn_like(x)
    a, s = m.schedule.alpha_sigma(t)
    z = a.view(-1, 1, 1, 1) * x + s.view(-1, 1, 1, 1) * eps
    z2, t2 = m.teacher_two_steps(z, t, y, w, 4)
    s2 = m.schedule.alpha_sigma(t2)
    xt = (z2 - (s2[1] / s).view(-1, 1, 1, 1) * z) / (
        s2[0] - s2[1] / s * a).view(-1, 1, 1, 1)
    x_s = x_from_v(z, m.net(z, t, y, w), a, s)
    # v_mse = (1 + SNR) ||x - x~||^2
    per = (x_s - xt).pow(2).flatten(1).mean(1)
    expect = ((1 + a**2 / s**2) * per).mean()
    assert torch.allclose(loss, expect, rtol=1e-4)
    assert native_loss_weight(a, s, 'v_mse', 'v').eq(1).all()


def test_start_stage_copies_student_to_teacher(tmp_path):
    m, _ = build(tmp_path)
    randomize(m.net, seed=5)
    m.start_stage(2)
    for p, q in zip(m.net.parameters(), m.teacher.net.parameters()):
        assert torch.equal(p, q)
    assert int(m.num_steps) == 2
    calls = []
    m.net.register_forward_hook(lambda *a: calls.append(1))
    m.sample(torch.tensor([0, 1]), guidance=1.0)
    assert len(calls) == 2  # defaults to the current N, one eval per step


def test_stage_change_restarts_the_ema_warmup(tmp_path):
    """At a stage change the EMA restarts from the student and its warm-up
    d_n = min(d, (1 + n) / (10 + n)) counts from the stage's start: the
    first update of the new stage uses d_1 = 2 / 11, as a run started from
    the previous stage's student file would."""
    m, _ = build(tmp_path, ema=dict(decay=0.999))
    for _ in range(5):
        m.update_ema()
    randomize(m.net, seed=3)
    m.start_stage(2)
    before = [p.clone() for p in m.net.parameters()]
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(1.0)
    m.update_ema()
    d1 = 2 / 11
    for b, pe, p in zip(before, m.net_ema.parameters(), m.net.parameters()):
        assert torch.allclose(pe, d1 * b + (1 - d1) * p)


def test_host_mirror_of_step_and_update_counters(tmp_path):
    """N and the EMA update count are read on the host without a per-call
    sync, yet follow every change: a stage change, load_state_dict, EMA
    updates, and a state loaded from another model."""
    m, _ = build(tmp_path, ema=dict(decay=0.9))
    assert m.host_value('num_steps') == 4
    m.start_stage(2)
    assert m.host_value('num_steps') == 2
    for k in range(1, 4):
        m.update_ema()
        assert m.host_value('num_updates') == int(m.num_updates) == k
    (tmp_path / 'other').mkdir()
    other, _ = build(tmp_path / 'other', ema=dict(decay=0.9))
    assert other.host_value('num_steps') == 4
    other.load_state_dict(m.state_dict())
    assert other.host_value('num_steps') == 2
    assert other.host_value('num_updates') == 3
    # the loss draws t from the current grid {i / N}
    seen = []
    other.net.register_forward_hook(
        lambda mod, args, out: seen.append(args[1].clone()))
    other.loss(torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64, )))
    assert set((seen[0] * 2).round().tolist()) <= {1.0, 2.0}


def test_halving_schedule_and_validation():
    assert halving_stages(8, 1, 10) == [(8, 10), (4, 10), (2, 10), (1, 10)]
    assert halving_stages(stages=[(4, 5), (2, 7)]) == [(4, 5), (2, 7)]
    with pytest.raises(UserError, match='power of two'):
        halving_stages(24, 1, 10)
    with pytest.raises(UserError, match='power of two'):
        halving_stages(12, 8, 10)
    with pytest.raises(UserError, match='halve'):
        halving_stages(stages=[(8, 5), (2, 5)])
    hook = ProgressiveDistillationHook(n_start=4, n_end=1, iters_per_stage=5)
    assert hook.ends == [5, 10, 15]
    assert [hook.stage_at(i) for i in (0, 4, 5, 14, 20)] == [0, 0, 1, 2, 2]
    runner = SimpleNamespace(max_iters=14, iter=0, model=None)
    with pytest.raises(UserError, match='max_iters'):
        hook.before_train(runner)


def _runner(model, it=0, max_iters=15):
    return SimpleNamespace(model=model, iter=it, max_iters=max_iters)


def test_n_start_defaults_to_the_model_num_steps(tmp_path):
    """N is set once, in model.num_steps: the hook reads it in before_run,
    before a resume loads the checkpoint's N, and builds the schedule."""
    m, _ = build(tmp_path, num_steps=4)
    hook = ProgressiveDistillationHook(n_end=1, iters_per_stage=5)
    assert hook.stages is None
    hook.before_run(_runner(m))
    m.num_steps.fill_(2)  # what a resume at iteration 5 loads
    hook.before_train(_runner(m, it=5))
    assert hook.stages == [(4, 5), (2, 5), (1, 5)]
    assert hook.ends == [5, 10, 15] and int(m.num_steps) == 2
    # a fresh run: N from the model, set for the first stage
    fresh = ProgressiveDistillationHook(n_end=2, iters_per_stage=5)
    m.num_steps.fill_(4)
    fresh.before_run(_runner(m))
    fresh.before_train(_runner(m))
    assert fresh.stages == [(4, 5), (2, 5)] and int(m.num_steps) == 4
    # the validation errors of an explicit n_start, raised at before_train
    resumed = ProgressiveDistillationHook(n_end=1, iters_per_stage=5)
    resumed.before_run(_runner(m))
    m.num_steps.fill_(1)
    with pytest.raises(UserError, match='resumed model has N=1 .* N=2'):
        resumed.before_train(_runner(m, it=5))
    m.num_steps.fill_(4)
    for kw, match in [(dict(n_end=3), 'power of two'),
                      (dict(n_end=1, iters_per_stage=6), 'max_iters')]:
        bad = ProgressiveDistillationHook(**{'iters_per_stage': 5, **kw})
        bad.before_run(_runner(m))
        with pytest.raises(UserError, match=match):
            bad.before_train(_runner(m))
    late = ProgressiveDistillationHook(n_end=1, iters_per_stage=5)
    with pytest.raises(UserError, match='needs a ProgressiveDistiller'):
        late.before_train(_runner(torch.nn.Linear(1, 1)))
    with pytest.raises(UserError, match='iters_per_stage'):
        ProgressiveDistillationHook(n_end=1)


def test_explicit_n_start_must_agree_with_the_model(tmp_path):
    m, _ = build(tmp_path, num_steps=4)
    same = ProgressiveDistillationHook(n_start=4, n_end=1, iters_per_stage=5)
    same.before_run(_runner(m))
    same.before_train(_runner(m))
    assert same.stages[0] == (4, 5) and int(m.num_steps) == 4
    bad = ProgressiveDistillationHook(n_start=8, n_end=1, iters_per_stage=5)
    bad.before_run(_runner(m))
    with pytest.raises(UserError, match=r'n_start \(8\) contradicts '
                       r'model.num_steps \(4\)'):
        bad.before_train(_runner(m, max_iters=100))
    listed = ProgressiveDistillationHook(stages=[(8, 5), (4, 5)])
    listed.before_run(_runner(m))
    with pytest.raises(UserError, match='first N of stages'):
        listed.before_train(_runner(m))


def test_first_stage_schedule_must_span_the_first_stage(tmp_path):
    """param_scheduler describes the first stage: a schedule that ends
    before it (the lr would sit at 0 for the rest) or after it is a one-line
    error naming the fix; a matching one (and an open end) passes."""
    from mmengine.optim.scheduler import ConstantLR, LinearLR
    m, _ = build(tmp_path, num_steps=4)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    def runner(end):
        sched = LinearLR(opt, start_factor=1.0, end_factor=0.0, begin=0,
                         end=end, by_epoch=False)
        return SimpleNamespace(model=m, iter=0, max_iters=20,
                               param_schedulers=[sched])

    for end in (3, 8):
        hook = ProgressiveDistillationHook(stages=[(4, 5), (2, 10)])
        hook.before_run(runner(end))
        with pytest.raises(UserError, match=f'param_scheduler ends at '
                           f'iteration {end} but the first halving stage '
                           r'\(N=4\) is 5 iterations long; set '
                           'param_scheduler end=5'):
            hook.before_train(runner(end))
    ok = ProgressiveDistillationHook(stages=[(4, 5), (2, 10)])
    ok.before_run(runner(5))
    ok.before_train(runner(5))
    assert int(m.num_steps) == 4
    open_end = SimpleNamespace(model=m, iter=0, max_iters=20,
                               param_schedulers=[ConstantLR(
                                   opt, factor=1.0, by_epoch=False)])
    ok.before_train(open_end)


def _train(repo_root, cfg, work_dir, *extra):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([repo_root,
                                           os.path.join(repo_root, 'tests')]))
    return subprocess.run(
        [sys.executable, 'tools/train.py', str(cfg), '--work-dir',
         str(work_dir), *extra], cwd=repo_root, env=env,
        capture_output=True, text=True, timeout=300)


def _write_cfg(tmp_path, repo_root, exit_after=None, stages=None):
    save_stage1(tmp_path / 's1.pth', num_classes=10)
    base = os.path.join(repo_root, 'configs', 'progressive',
                        'progressive_digits_32to1.py')
    sched = dict(stages=stages) if stages else dict(n_end=1,
                                                    iters_per_stage=3)
    hooks = [dict(type='PortableCheckpointHook'),
             dict(type='ProgressiveDistillationHook', **sched)]
    if exit_after:
        hooks.append(dict(type='ExitAtIterHook', exit_after=exit_after))
    name = f'cfg_{exit_after}.py'
    (tmp_path / name).write_text(f'''
_base_ = [{base!r}]
custom_imports = dict(imports=['_stop_hook'], allow_failed_imports=False)
model = dict(student=dict(base_channels=8), num_steps=4,
             teacher_ckpt={str(tmp_path / "s1.pth")!r})
train_dataloader = dict(batch_size=8)
train_cfg = dict(max_iters=9)
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.1,
                        by_epoch=False, begin=0, end=3)]
custom_hooks = {hooks!r}
default_hooks = dict(checkpoint=dict(interval=4), logger=dict(interval=1))
''')
    return tmp_path / name


@pytest.mark.slow
@pytest.mark.parametrize('stages', [None, [(4, 3), (2, 2), (1, 4)]],
                         ids=['equal', 'stretched'])
def test_kill_and_resume_is_exact(tmp_path, repo_root, stages):
    """Killed after iteration 7, resumed from iteration 4 (inside the
    second stage, whose scheduler is stretched when the stages differ in
    length): the same weights, students and scheduler state."""
    full = _train(repo_root, _write_cfg(tmp_path, repo_root, stages=stages),
                  tmp_path / 'a')
    assert full.returncode == 0, full.stderr[-3000:]
    for n in (4, 2, 1):
        assert (tmp_path / 'a' / f'student_{n}step.pth').is_file()
    killed = _train(repo_root, _write_cfg(tmp_path, repo_root, 7, stages),
                    tmp_path / 'b')
    assert killed.returncode == 3, killed.stderr[-3000:]
    assert not (tmp_path / 'b' / 'iter_8.pth').exists()
    resumed = _train(repo_root, _write_cfg(tmp_path, repo_root,
                                           stages=stages),
                     tmp_path / 'b', '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Advance dataloader 4 steps' in resumed.stdout + resumed.stderr
    a = torch.load(tmp_path / 'a' / 'iter_9.pth', weights_only=True)
    b = torch.load(tmp_path / 'b' / 'iter_9.pth', weights_only=True)
    assert int(a['state_dict']['num_steps']) == 1
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    for n in (2, 1):  # written after the resume, identical
        sa = torch.load(tmp_path / 'a' / f'student_{n}step.pth',
                        weights_only=True)['state_dict']
        sb = torch.load(tmp_path / 'b' / f'student_{n}step.pth',
                        weights_only=True)['state_dict']
        assert all(torch.equal(v, sb[k]) for k, v in sa.items())
    sa, sb = a['param_schedulers'][0], b['param_schedulers'][0]
    assert sa['last_step'] == sb['last_step']
    # the last stage's span: 3 iterations, or stretched to 4
    assert sa['end'] == sb['end'] == (4 if stages else 3)


@pytest.mark.slow
def test_cli_validation_errors(tmp_path, repo_root):
    cfg = _write_cfg(tmp_path, repo_root)
    r = _train(repo_root, cfg, tmp_path / 'c', '--cfg-options',
               'train_cfg.max_iters=5')
    assert r.returncode == 2
    assert 'max_iters' in r.stderr.strip().splitlines()[-1]


def test_student_file_loads_strictly(tmp_path):
    """A saved student_{N}step.pth (net.* + num_steps) loads strictly into
    a ProgressiveDistiller built without a teacher checkpoint."""
    m, _ = build(tmp_path)
    randomize(m.net, seed=11)
    m.num_steps.fill_(2)
    hook = ProgressiveDistillationHook(n_start=2, n_end=1, iters_per_stage=1)
    runner = SimpleNamespace(work_dir=str(tmp_path),
                             logger=SimpleNamespace(info=lambda *a: None))
    hook.save_student(runner, m, 2, 1)
    st = torch.load(tmp_path / 'student_2step.pth', weights_only=True)
    assert set(st['state_dict']) == {f'net.{k}' for k in m.net.state_dict()
                                     } | {'num_steps'}
    fresh = MODELS.build(dict(type='ProgressiveDistiller',
                              student=student_cfg(), num_classes=3,
                              image_shape=(1, 8, 8), num_steps=8))
    fresh.load_state_dict(st['state_dict'])
    assert int(fresh.num_steps) == 2
    z = torch.randn(2, 1, 8, 8)
    lab = torch.tensor([0, 1])
    assert torch.equal(fresh.sample(lab, noise=z, guidance=1.0),
                       m.sample(lab, noise=z, guidance=1.0))


@pytest.mark.parametrize('kind', ['linear', 'cosine'])
def test_unequal_stages_stretch_the_one_stage_scheduler(kind):
    """param_scheduler describes the first stage; a stage three times as
    long gets the lr curve of a scheduler freshly built for its length."""
    from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR

    def make(end, opt):
        if kind == 'linear':
            return LinearLR(opt, start_factor=1.0, end_factor=0.0, begin=0,
                            end=end, by_epoch=False)
        return CosineAnnealingLR(opt, T_max=end, begin=0, end=end,
                                 by_epoch=False)

    def lrs(opt, sched, n):
        out = []
        for _ in range(n):
            out.append(opt.param_groups[0]['lr'])
            opt.step(), sched.step()
        return out

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make(10, opt)
    runner = SimpleNamespace(optim_wrapper=SimpleNamespace(optimizer=opt),
                             param_schedulers=[sched])
    first = lrs(opt, sched, 10)
    ProgressiveDistillationHook.restart_optimization(runner, 30 / 10)
    long = lrs(opt, sched, 30)
    ProgressiveDistillationHook.restart_optimization(runner, 10 / 10)
    again = lrs(opt, sched, 10)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref_long = lrs(ref_opt, make(30, ref_opt), 30)
    assert long == pytest.approx(ref_long, abs=1e-12)
    assert again == pytest.approx(first, abs=1e-12)
    # analytic: mmengine's linear factor runs over end - begin - 1 steps
    half = 0.1 * (1 - 15 / 29) if kind == 'linear' else 0.05
    assert long[15] == pytest.approx(half, abs=1e-12)
