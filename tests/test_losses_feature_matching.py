"""FeatureMatchingLoss and the forward-hook recorders."""
import pytest
import torch
import torch.nn.functional as F

from mmdistill.models.losses.feature_recorder import FeatureRecorder
from mmdistill.registry import MODELS
from mmdistill.utils import UserError

from _distill_helpers import randomize, save_teacher, teacher_cfg

FM = dict(pairs=[dict(student='net.mid.0', teacher='net.mid.0', weight=0.5),
                 dict(student='net.down.0.0', teacher='net.down.0.0')])


def _capture(module):
    out = {}
    h = module.register_forward_hook(lambda m, a, o: out.setdefault('f', o))
    return out, h


def test_recorder_records_named_modules_only_when_asked():
    m = MODELS.build(teacher_cfg())
    randomize(m.net)
    rec = FeatureRecorder(m, ['net.mid.0', 'net.up.1.0'])
    z, t, y = torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([0, 1])
    m.net(z, t, y)
    assert rec.data == {}  # not recording outside record()
    ref_mid, h1 = _capture(m.net.mid[0])
    ref_up, h2 = _capture(m.net.up[1][0])
    with rec.record() as feats:
        m.net(z, t, y)
        m.net(z * 0, t, y)  # a second call: the first is kept
    h1.remove()
    h2.remove()
    assert set(feats) == {'net.mid.0', 'net.up.1.0'}
    assert torch.equal(feats['net.mid.0'], ref_mid['f'])
    assert torch.equal(feats['net.up.1.0'], ref_up['f'])
    with pytest.raises(UserError, match='not found'):
        FeatureRecorder(m, ['net.nope'])
    with pytest.raises(UserError, match='never called'):
        FeatureRecorder(m, ['net.up.1'])


def test_named_recorders():
    """record('student') / record('teacher') use the recorder of that side
    (student_recorder / teacher_recorder)."""
    student, teacher = MODELS.build(teacher_cfg()), MODELS.build(teacher_cfg())
    loss = MODELS.build(dict(type='FeatureMatchingLoss', **FM))
    with pytest.raises(UserError, match='attach'):
        loss.record('student')
    assert loss.attach(student, teacher) is loss
    assert loss.student_recorder is not loss.teacher_recorder
    z, t, y = torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([0, 1])
    with loss.record('teacher') as t_feats:
        student.net(z, t, y)  # the student is not recorded here
        teacher.net(z, t, y)
    with loss.record('student') as s_feats:
        student.net(z, t, y)
    assert set(t_feats) == set(s_feats) == {'net.mid.0', 'net.down.0.0'}
    assert t_feats is loss.teacher_recorder.data
    assert s_feats is loss.student_recorder.data
    with pytest.raises(ValueError, match='role'):
        loss.record('other')


def test_feature_matching_loss_value():
    loss = MODELS.build(dict(type='FeatureMatchingLoss', **FM))
    s = {'net.mid.0': torch.randn(2, 4), 'net.down.0.0': torch.randn(2, 3)}
    t = {'net.mid.0': torch.randn(2, 4), 'net.down.0.0': torch.randn(2, 3)}
    expect = 0.5 * ((s['net.mid.0'] - t['net.mid.0'])**2).mean() + \
        ((s['net.down.0.0'] - t['net.down.0.0'])**2).mean()
    assert torch.allclose(loss(s, t), expect)
    with pytest.raises(UserError, match='shape'):
        loss({'net.mid.0': torch.randn(2, 5), 'net.down.0.0': s['net.down.0.0']},
             t)


def test_stage1_feature_matching_uses_cfg_combined_teacher_features(
        tmp_path):
    save_teacher(tmp_path / 't.pth')
    m = MODELS.build(dict(type='GuidanceDistiller', teacher=teacher_cfg(),
                          teacher_ckpt=str(tmp_path / 't.pth'),
                          feature_matching=FM))
    randomize(m.net, seed=4)
    x, y = torch.randn(3, 1, 8, 8), torch.tensor([0, 1, 2])
    torch.manual_seed(1)
    losses = m.loss(x, y)
    assert set(losses) == {'loss', 'loss_feat'}
    torch.manual_seed(1)
    t = torch.rand(3) * (1 - m.t_min) + m.t_min
    w = torch.rand(3) * 4
    eps = torch.randn_like(x)
    a, s = m.schedule.alpha_sigma(t)
    z = a.view(-1, 1, 1, 1) * x + s.view(-1, 1, 1, 1) * eps
    expect = 0.0
    for name, weight in (('mid.0', 0.5), ('down.0.0', 1.0)):
        sm = m.net.get_submodule(name)
        tm = m.teacher.net.get_submodule(name)
        fs, h = _capture(sm)
        m.net(z, t, y, w)
        h.remove()
        fc, h = _capture(tm)
        m.teacher.net(z, t, y)
        h.remove()
        fu, h = _capture(tm)
        m.teacher.net(z, t, torch.full_like(y, 3))
        h.remove()
        wb = w.view(-1, *[1] * (fc['f'].ndim - 1))
        ft = (1 + wb) * fc['f'] - wb * fu['f']
        expect = expect + weight * F.mse_loss(fs['f'], ft)
    assert torch.allclose(losses['loss_feat'], expect, rtol=1e-4, atol=1e-7)
    losses['loss_feat'].backward()
    assert m.net.mid[0].conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.teacher.parameters())


def test_stage2_feature_matching_config(tmp_path):
    from test_progressive_distill import save_stage1, student_cfg
    save_stage1(tmp_path / 's1.pth')
    m = MODELS.build(dict(type='ProgressiveDistiller', student=student_cfg(),
                          teacher_ckpt=str(tmp_path / 's1.pth'),
                          num_classes=3, image_shape=(1, 8, 8), num_steps=2,
                          feature_matching=FM))
    out = m.loss(torch.randn(2, 1, 8, 8), torch.tensor([0, 1]))
    # student == teacher at the start and both see z_t first: zero loss
    assert float(out['loss_feat'].detach()) == 0.0
    randomize(m.net, seed=9)
    out = m.loss(torch.randn(2, 1, 8, 8), torch.tensor([0, 1]))
    assert float(out['loss_feat'].detach()) > 0
