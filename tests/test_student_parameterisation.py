"""A student of another parameterisation than its teacher
(``student_prediction_type``): a v student of the eps real-format digits
teacher starts as the teacher, its readout moves to v, stage 2 and the
export carry it, and contradictions are one-line errors."""
import pytest
import torch

from mmdistill.diffusion import (DiscreteSchedule, blended_to_x, ddpm_betas,
                                 from_x, to_x)

FOLDER = 'checkpoints/ddpm-unet2d-digits'
S1_V = 'configs/guided_distill/guided_distill_ddpm_digits_v.py'


def _schedule():
    return DiscreteSchedule(ddpm_betas('linear', 1000, 1e-4, 0.02))


def _cases():
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([1.0, 0.999, 0.9, 0.5, 0.1, 0.003])
    alpha, sigma = _schedule().alpha_sigma(t)
    x = torch.randn(6, 1, 8, 8, generator=g).clamp(-1, 1)
    eps = torch.randn(6, 1, 8, 8, generator=g)
    z = alpha.view(-1, 1, 1, 1) * x + sigma.view(-1, 1, 1, 1) * eps
    return z, x, alpha, sigma


@pytest.mark.parametrize('source,target', [('eps', 'v'), ('v', 'eps'),
                                           ('eps', 'x'), ('x', 'v')])
def test_blended_readout_ends(source, target):
    """s = 0 reads the output as ``source``, s = 1 as ``target`` (to_x),
    and s near the ends is continuous with them (float64: in float32 the
    two readouts round differently where 1/alpha is large)."""
    z, x, alpha, sigma = (c.double() for c in _cases())
    out = torch.randn_like(z)
    for s, kind in ((0.0, source), (1.0, target)):
        assert torch.equal(blended_to_x(out, z, alpha, sigma, source,
                                        target, s),
                           to_x(out, z, alpha, sigma, kind))
    for s, kind in ((1e-9, source), (1 - 1e-9, target)):
        got = blended_to_x(out, z, alpha, sigma, source, target, s)
        ref = to_x(out, z, alpha, sigma, kind)
        assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_eps_to_v_path_is_geometric():
    """Half-way from eps to v the output that reproduces x is
    (alpha^s z - alpha^(1-s) x) / sigma (the docstring's closed form), so it
    stays O(1) at the noisy end where the eps readout multiplies by 1/alpha
    = 156."""
    z, x, alpha, sigma = _cases()
    a, sg = alpha.view(-1, 1, 1, 1), sigma.view(-1, 1, 1, 1)
    for s in (0.25, 0.5, 0.75):
        out = (a**s * z - a**(1 - s) * x) / sg
        got = blended_to_x(out, z, alpha, sigma, 'eps', 'v', s)
        assert torch.allclose(got, x, atol=1e-4), s


def _stage1_v(**kw):
    from mmdistill import register_all_modules
    from mmdistill.apis import load_config
    from mmdistill.registry import MODELS
    register_all_modules(init_default_scope=False)
    cfg = load_config(S1_V)
    model = dict(cfg.model.to_dict() if hasattr(cfg.model, 'to_dict')
                 else cfg.model, **kw)
    return MODELS.build(model)


def test_fresh_v_student_equals_the_eps_teacher():
    """The fresh v student's x_hat equals the conditional teacher's at
    every t (w = 0), although it predicts v: its readout starts at eps."""
    torch.manual_seed(0)
    m = _stage1_v().eval()
    assert m.prediction_type == 'v' and m.teacher_prediction_type == 'eps'
    assert m.readout_s() == 0.0
    z, _, _, _ = _cases()
    t = torch.tensor([1.0, 0.999, 0.9, 0.5, 0.1, 0.003])
    y, w = torch.arange(6) % 10, torch.zeros(6)
    with torch.no_grad():
        xs = m.x_hat(m.net, z, t, y, w)
        xt = to_x(m.teacher.net(z, t, y), z,
                  *m.schedule.alpha_sigma(t), 'eps')
    assert torch.equal(xs, xt)


def test_readout_progress_and_loss_in_v():
    """s = min(1, updates / reparam_iters); at s = 1 the network output
    itself is the v prediction (x_hat = alpha z - sigma out) and the loss is
    the truncated-SNR v loss of that output."""
    torch.manual_seed(0)
    m = _stage1_v(reparam_iters=4, ema=None)
    for k in range(1, 6):
        m.after_train_update()
        assert m.readout_s() == pytest.approx(min(1.0, k / 4))
    z, x, alpha, sigma = _cases()
    t = torch.tensor([1.0, 0.999, 0.9, 0.5, 0.1, 0.003])
    y, w = torch.arange(6) % 10, torch.zeros(6)
    with torch.no_grad():
        out = m.net(z, t, y, w)
        assert torch.equal(m.x_hat(m.net, z, t, y, w),
                           to_x(out, z, alpha, sigma, 'v'))
        assert torch.equal(m.student_output(out, z, alpha, sigma), out)
        # half-way the loss is still the one of the student's v
        m.readout_progress.fill_(0.5)
        got = m.student_output(out, z, alpha, sigma)
        ref = from_x(blended_to_x(out, z, alpha, sigma, 'eps', 'v', 0.5), z,
                     alpha, sigma, 'v')
        assert torch.equal(got, ref)


def test_ema_starts_when_the_readout_is_the_students():
    m = _stage1_v(reparam_iters=7)
    assert m.ema_cfg['start_iter'] == 7


def test_misspelled_student_prediction_type_is_one_line():
    from mmdistill.utils import UserError
    with pytest.raises(UserError, match="unknown student_prediction_type "
                       "'vee'.*one of \\('eps', 'x', 'v'\\)"):
        _stage1_v(student_prediction_type='vee')
    with pytest.raises(UserError, match='reparam_iters must be'):
        _stage1_v(reparam_iters=-1)


def test_v_student_through_both_stages_and_export(tmp_path):
    """Stage 1 (v student, readout done after 2 of 3 updates), stage 2 from
    its checkpoint with prediction_type='v' (the stage-1 file records it),
    load_student, and an export whose scheduler says v_prediction; a
    contradicting stage-2 config and a half-way stage-1 file are one-line
    errors."""
    import json

    from _reliability import assert_one_line_error, run_train_inprocess
    s1 = tmp_path / 's1'
    code, err = run_train_inprocess(
        S1_V, s1, 'train_cfg.max_iters=3', 'param_scheduler.0.end=3',
        'model.reparam_iters=2', 'default_hooks.checkpoint.interval=1')
    assert code in (0, None), err[-2000:]
    state = torch.load(s1 / 'iter_3.pth', weights_only=False)['state_dict']
    assert int(state['student_prediction_code']) == 2
    assert float(state['readout_progress']) == 1.0
    assert float(torch.load(s1 / 'iter_1.pth', weights_only=False)[
        'state_dict']['readout_progress']) == 0.5
    s2 = tmp_path / 's2'
    stage2 = 'configs/progressive/progressive_ddpm_digits_v_32to1.py'
    code, err = run_train_inprocess(
        stage2, s2, f'model.teacher_ckpt={s1 / "iter_3.pth"}',
        'model.num_steps=2', 'train_cfg.max_iters=2',
        'custom_hooks.1.iters_per_stage=1', 'param_scheduler.0.end=1')
    assert code in (0, None), err[-2000:]
    # prediction_type=None: stage 2 inherits the recorded parameterisation
    from mmdistill.apis import load_config, load_student
    from mmdistill.registry import MODELS
    cfg = load_config(stage2).model.to_dict()
    cfg.update(prediction_type=None, teacher_ckpt=str(s1 / 'iter_3.pth'))
    assert MODELS.build(cfg).prediction_type == 'v'
    st = load_student(str(s2 / 'student_1step.pth'))
    assert st.prediction_type == 'v'
    s1_student = load_student(str(s1 / 'iter_3.pth'))
    assert s1_student.prediction_type == 'v' and s1_student.readout_s() == 1
    from mmdistill.models.adapters.export import export_student
    cfg = export_student(st, str(tmp_path / 'out'), num_steps=1)
    assert cfg['prediction_type'] == 'v'
    sched = json.loads((tmp_path / 'out' / 'scheduler' /
                        'scheduler_config.json').read_text())
    assert sched['prediction_type'] == 'v_prediction'
    # stage 2 saying eps about a v stage-1 file
    code, err = run_train_inprocess(
        'configs/progressive/progressive_ddpm_digits_32to1.py',
        tmp_path / 'bad', f'model.teacher_ckpt={s1 / "iter_3.pth"}',
        'train_cfg.max_iters=1')
    assert_one_line_error(code, err, "prediction_type='eps' contradicts")
    code, err = run_train_inprocess(
        stage2, tmp_path / 'bad2', f'model.teacher_ckpt={s1 / "iter_1.pth"}',
        'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'still changing its parameterisation')
    from mmdistill.utils import UserError
    with pytest.raises(UserError, match='still changing'):
        export_student(load_student(str(s1 / 'iter_1.pth')),
                       str(tmp_path / 'out1'))
