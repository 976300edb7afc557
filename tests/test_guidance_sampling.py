"""Guidance weights of a training batch: w ~ U[w_min, w_max], with an
optional atom at w_min (``p_w_min``), in both distillers."""
import pytest
import torch

from mmdistill.models.distillers.teacher import (per_sample_uniform,
                                                 sample_guidance)
from mmdistill.registry import MODELS
from mmdistill.utils import UserError

from _distill_helpers import TINY_NET, save_teacher, teacher_cfg


def test_without_atom_the_draws_are_the_uniform_ones():
    a = sample_guidance(64, 0.5, 3.0, 0.0, 'cpu',
                        torch.Generator().manual_seed(4))
    b = per_sample_uniform(64, 0.5, 3.0, 'cpu',
                           torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_atom_fraction_and_uniform_rest():
    """P(w = low) = p; the rest is U[low, high] (mean (low + high) / 2,
    variance (high - low)^2 / 12): binomial / CLT bounds at 5 sigma."""
    n, p, low, high = 200_000, 0.25, 1.0, 5.0
    w = sample_guidance(n, low, high, p, 'cpu',
                        torch.Generator().manual_seed(0))
    at = w == low
    frac = at.double().mean().item()
    assert abs(frac - p) < 5 * (p * (1 - p) / n) ** 0.5
    rest = w[~at].double()
    assert rest.min() >= low and rest.max() <= high
    sd = (high - low) / 12 ** 0.5
    assert abs(rest.mean().item() - (low + high) / 2) < 5 * sd / len(
        rest) ** 0.5
    assert abs(rest.var().item() - sd ** 2) < 0.02 * sd ** 2


def _recorded_w(m, b=400):
    """The w the student network sees in one ``loss`` call."""
    seen = []
    forward = m.net.forward

    def spy(z, t, y, w, *a, **k):
        seen.append(w.detach().clone())
        return forward(z, t, y, w, *a, **k)

    m.net.forward = spy
    torch.manual_seed(0)
    m.loss(torch.randn(b, 1, 8, 8), torch.randint(0, 3, (b, )))
    return seen[0]


def _stage1(tmp_path, **kw):
    save_teacher(tmp_path / 'teacher.pth')
    return MODELS.build(dict(type='GuidanceDistiller', teacher=teacher_cfg(),
                             teacher_ckpt=str(tmp_path / 'teacher.pth'),
                             **kw))


def _stage2(tmp_path, **kw):
    student = dict(TINY_NET, guidance_embed=True)
    net = MODELS.build(student)
    torch.save({'state_dict': {f'net.{k}': v for k, v in
                               net.state_dict().items()}},
               tmp_path / 's1.pth')
    return MODELS.build(dict(type='ProgressiveDistiller', student=student,
                             teacher_ckpt=str(tmp_path / 's1.pth'),
                             num_classes=3, image_shape=(1, 8, 8),
                             num_steps=4, **kw))


@pytest.mark.parametrize('build', [_stage1, _stage2])
def test_distillers_train_at_w_min_with_probability_p(tmp_path, build):
    b, p = 400, 0.5
    w = _recorded_w(build(tmp_path, w_min=0.0, w_max=4.0, p_w_min=p), b)
    n_at = int((w == 0).sum())
    # binomial(400, 0.5): 5 sigma = 50
    assert abs(n_at - b * p) < 50
    assert w.max() <= 4.0 and w.min() >= 0.0
    w0 = _recorded_w(build(tmp_path, w_min=0.0, w_max=4.0), b)
    assert int((w0 == 0).sum()) == 0  # the default: no atom


@pytest.mark.parametrize('p', [-0.1, 1.0, 2])
def test_bad_p_w_min_is_one_line(tmp_path, p):
    with pytest.raises(UserError, match=r'p_w_min must be in \[0, 1\)'):
        _stage1(tmp_path, p_w_min=p)
