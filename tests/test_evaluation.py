"""Metric math, feature extractors and batch-independent generation."""
import math
import os.path as osp

import numpy as np
import pytest
import scipy.linalg
import torch

import mmdistill  # noqa: F401
from mmdistill.datasets import load_digits_split
from mmdistill.evaluation import (accuracy, build_extractor,
                                  evaluate_generator, feature_statistics,
                                  fid_from_features, frechet_distance,
                                  inception_score)
from mmdistill.evaluation.extractors import INCEPTION_FILE, to_uint8_range
from mmdistill.evaluation.generative import (EvalContext, SampleSource,
                                             TensorSource, run_metrics,
                                             setting_name)
from mmdistill.evaluation.metrics import FID
from mmdistill.registry import MODELS
from mmdistill.utils import UserError

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLS_CKPT = osp.join(ROOT, 'checkpoints', 'digits_classifier.pth')


def reference_fid(mu1, s1, mu2, s2, eps=1e-6):
    """The usual scipy formulation (sqrtm of the non-symmetric S1 S2 with
    an eps offset when it is singular), written independently."""
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = np.real(covmean)
    d = mu1 - mu2
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def random_stats(rng, dim, n=None):
    a = rng.normal(size=(dim, n or 2 * dim))
    return rng.normal(size=dim), a @ a.T / a.shape[1]


@pytest.mark.parametrize('dim', [4, 32, 128])
def test_frechet_matches_scipy_reference(dim):
    rng = np.random.default_rng(dim)
    mu1, s1 = random_stats(rng, dim)
    mu2, s2 = random_stats(rng, dim)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = reference_fid(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_rank_deficient_covariance_is_stable():
    # fewer samples than dimensions: singular covariances
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 0.3
    ours = fid_from_features(f1, f2)
    ref = reference_fid(*feature_statistics(f1), *feature_statistics(f2))
    assert np.isfinite(ours)
    assert ours == pytest.approx(ref, rel=1e-5)


def test_frechet_diagonal_analytic():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    expected = ((mu1 - mu2)**2).sum() + ((np.sqrt(a) - np.sqrt(b))**2).sum()
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)
    # torch tensors in float32 are accepted and promoted to float64
    got32 = frechet_distance(torch.tensor(mu1), torch.tensor(np.diag(a)),
                             torch.tensor(mu2), torch.tensor(np.diag(b)))
    assert got32 == pytest.approx(expected, rel=1e-10)


def test_fid_self_zero_and_monotone_in_noise():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    assert abs(fid_from_features(f, f)) < 1e-8 * np.trace(np.cov(f.T))
    noise = rng.normal(size=f.shape)
    values = [fid_from_features(f, f + s * noise)
              for s in (0.1, 0.3, 1.0, 3.0)]
    assert all(x < y for x, y in zip(values, values[1:])), values


def test_frechet_shape_mismatch():
    with pytest.raises(ValueError, match='mismatched'):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_inception_score_hand_computed():
    # p1 = (1/2, 1/2), p2 = (1, 0): p(y) = (3/4, 1/4)
    kl1 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl2 = 1.0 * math.log(1.0 / 0.75)
    mean, std = inception_score(np.array([[0.5, 0.5], [1.0, 0.0]]), 1)
    assert mean == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)
    assert std == 0
    # confident and balanced over K classes -> K; identical rows -> 1
    assert inception_score(np.eye(7), 1)[0] == pytest.approx(7)
    assert inception_score(np.tile([0.2, 0.8], (6, 1)), 2)[0] == \
        pytest.approx(1)
    # splits: mean of per-chunk scores
    probs = np.concatenate([np.eye(4), np.tile([0.25] * 4, (4, 1))])
    assert inception_score(probs, 2) == pytest.approx((2.5, 1.5))


def test_accuracy():
    logits = torch.tensor([[2., 1.], [0., 3.], [5., 1.]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


class TinyInception(torch.nn.Module):
    """Same call interface as the reference TorchScript: uint8 NCHW RGB in,
    ``return_features`` -> pooled features, else softmax probabilities."""

    def forward(self, img: torch.Tensor, return_features: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        assert img.dtype == torch.uint8
        assert img.shape[1] == 3
        x = img.float() / 255
        feats = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)
        if return_features:
            return feats
        logits = feats @ torch.arange(30.).view(6, 5) / 10
        if not no_output_bias:
            logits = logits + 1
        return torch.softmax(logits, 1)


def test_inception_torchscript_loading(tmp_path):
    path = tmp_path / INCEPTION_FILE
    torch.jit.script(TinyInception()).save(str(path))
    ext = build_extractor(dict(type='inception', path=str(path)))
    imgs = torch.rand(5, 1, 8, 8) * 2 - 1
    out = ext.extract(imgs)
    u = ((imgs + 1) * 127.5).round().clamp(0, 255) / 255
    expected = torch.cat([u.mean((2, 3)).repeat(1, 3),
                          u.amax((2, 3)).repeat(1, 3)], 1)
    torch.testing.assert_close(out['features'], expected)
    assert out['probs'].shape == (5, 5)
    torch.testing.assert_close(out['probs'].sum(1), torch.ones(5))
    assert ext.key.startswith('inception-')


def test_inception_missing_file_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.delenv('MMDISTILL_INCEPTION', raising=False)
    with pytest.raises(UserError) as e:
        build_extractor('inception')
    msg = str(e.value)
    assert INCEPTION_FILE in msg and 'https://' in msg
    assert '\n' not in msg
    # found in mmagic's cache folder without a path
    cache = tmp_path / '.cache' / 'openmmlab' / 'mmagic'
    cache.mkdir(parents=True)
    torch.jit.script(TinyInception()).save(str(cache / INCEPTION_FILE))
    assert build_extractor('inception').path == str(cache / INCEPTION_FILE)


def test_uint8_conversion():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    assert to_uint8_range(x).tolist() == [0, 128, 255, 255]


def test_classifier_extractor_on_real_digits():
    ext = build_extractor(dict(type='classifier', checkpoint=CLS_CKPT))
    x, y = load_digits_split('test')
    out = ext.extract(torch.as_tensor(x).float())
    assert accuracy(out['probs'], y) > 0.95
    logits = ext.net(torch.as_tensor(x).float())
    torch.testing.assert_close(out['probs'], torch.softmax(logits, 1))
    assert out['features'].shape == (len(y), ext.net.feat_dim)


def test_unknown_extractor():
    with pytest.raises(UserError, match='unknown feature extractor'):
        build_extractor('vgg')


def test_setting_name():
    assert setting_name('FID', 10000, dict(steps=4, guidance=2.0,
                                           sampler='ddim')) == \
        'FID-10k/4step-w2'
    assert setting_name('IS', 360, dict(steps=8, guidance=0.5,
                                        sampler='stochastic')) == \
        'IS-360/8step-w0.5-stochastic'


def tiny_teacher(seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='CFGDiffusion',
        denoiser=dict(type='CompactUNet', in_channels=1, base_channels=8,
                      channel_mult=(1, 2), num_res_blocks=1,
                      num_classes=10),
        num_classes=10, image_shape=(1, 8, 8))).eval()
    # a fresh UNet's output layer is zero-initialised: give every weight a
    # random value so that samples depend on the seed, class and guidance
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.mark.parametrize('sampler', ['ddim', 'ddpm'])
def test_samples_independent_of_batch_split(sampler):
    model = tiny_teacher()
    src = SampleSource(model, dict(steps=3, guidance=1.0, sampler=sampler),
                       base_seed=5)
    whole, labels = src(list(range(10)))
    parts = torch.cat([src([0, 1, 2])[0], src(list(range(3, 10)))[0]])
    torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-5)
    assert labels.tolist() == [i % 10 for i in range(10)]
    other, _ = SampleSource(model, dict(steps=3, guidance=1.0,
                                        sampler=sampler), base_seed=6)(
        list(range(10)))
    assert not torch.allclose(whole, other)


def test_evaluate_generator_sweep_and_cache(tmp_path):
    model = tiny_teacher()
    x, y = load_digits_split('test')
    sweep = [dict(steps=2, guidance=0.0), dict(steps=2, guidance=3.0)]
    kw = dict(extractor=dict(type='classifier', checkpoint=CLS_CKPT),
              real_images=torch.as_tensor(x), n=60, batch_size=16,
              sweep=sweep, progress=False)
    res = evaluate_generator(model, real_stats_cache=str(tmp_path), **kw)
    names = {'FID-60/2step-w0', 'FID-60/2step-w3', 'IS-60/2step-w0',
             'IS-60/2step-w3', 'Acc-60/2step-w0', 'Acc-60/2step-w3'}
    assert names <= set(res)
    cached = list(tmp_path.glob('classifier-*__tensors360__n360.pt'))
    assert len(cached) == 1
    again = evaluate_generator(model, real_stats_cache=str(tmp_path), **kw)
    assert again == pytest.approx(res, rel=1e-12)
    # a truncated or foreign cache file is recomputed and replaced
    good = cached[0].read_bytes()
    for bad in (good[:len(good) // 2], b'not a statistics file'):
        cached[0].write_bytes(bad)
        redo = evaluate_generator(model, real_stats_cache=str(tmp_path),
                                  **kw)
        assert redo == pytest.approx(res, rel=1e-12)
        st = torch.load(cached[0], weights_only=True)
        assert st['n'] == 360 and st['sigma'].shape == (128, 128)
    # independent recomputation of one entry
    ext = build_extractor(dict(type='classifier', checkpoint=CLS_CKPT))
    imgs, labels = SampleSource(model, dict(steps=2, guidance=3.0))(
        list(range(60)))
    fake = ext.extract(imgs)
    real = ext.extract(torch.as_tensor(x).float())
    assert res['FID-60/2step-w3'] == pytest.approx(
        fid_from_features(fake['features'], real['features']), rel=1e-6)
    assert res['Acc-60/2step-w3'] == pytest.approx(
        accuracy(fake['probs'], labels))
    assert res['IS-60/2step-w3'] == pytest.approx(
        inception_score(fake['probs'], 10)[0], rel=1e-6)


class Student(torch.nn.Module):
    """A stand-in distilled model: samples like ``inner``, owns a teacher."""

    def __init__(self, inner, teacher):
        super().__init__()
        self.inner, self.teacher = inner, teacher
        self.num_classes, self.image_shape = 10, (1, 8, 8)
        self.default_sample = dict(steps=2, guidance=1.0, sampler='ddim')

    def sample(self, *args, **kwargs):
        return self.inner.sample(*args, **kwargs)

    def device_of(self):
        return torch.device('cpu')


def test_fid_against_teacher_samples():
    teacher = tiny_teacher(0)
    ext_cfg = dict(type='classifier', checkpoint=CLS_CKPT)

    def fid(student_model):
        m = FID(reference='teacher', fake_nums=40, extractor=ext_cfg,
                sample_kwargs=dict(steps=2, guidance=1.0),
                reference_kwargs=dict(steps=2, guidance=1.0))
        return run_metrics([m], EvalContext(Student(student_model, teacher),
                                            batch_size=16, progress=False))

    ext = build_extractor(ext_cfg)
    imgs, _ = SampleSource(teacher, dict(steps=2, guidance=1.0))(
        list(range(40)))
    scale = np.trace(feature_statistics(ext.extract(imgs)['features'])[1])
    same = fid(teacher)
    assert list(same) == ['FID-teacher-40/2step-w1']
    # 40 samples of 128-d features: rank-deficient covariances, round-off
    # of the matrix root stays far below the feature scale
    assert abs(same['FID-teacher-40/2step-w1']) < 1e-6 * scale
    assert fid(tiny_teacher(1))['FID-teacher-40/2step-w1'] > 1e-3 * scale


def test_fid_teacher_reference_needs_teacher():
    m = FID(reference='teacher', fake_nums=10,
            extractor=dict(type='classifier', checkpoint=CLS_CKPT))
    with pytest.raises(UserError, match='teacher'):
        run_metrics([m], EvalContext(tiny_teacher(), progress=False))


def test_real_nums_too_large():
    m = FID(fake_nums=10, real_nums=1000,
            extractor=dict(type='classifier', checkpoint=CLS_CKPT))
    x, _ = load_digits_split('test')
    ctx = EvalContext(tiny_teacher(), TensorSource(x), progress=False)
    with pytest.raises(UserError, match='real_nums'):
        run_metrics([m], ctx)


class _StubRunner:
    """What the generative loops use of a Runner."""

    def __init__(self, model):
        self.model, self.hooks = model, []

    def build_evaluator(self, evaluator):
        return evaluator

    def call_hook(self, name, **kwargs):
        self.hooks.append((name, kwargs))


@pytest.mark.parametrize('kind', ['test', 'val'])
def test_generative_loops_use_dataset_and_metrics(kind):
    from mmengine.evaluator import Evaluator
    from torch.utils.data import DataLoader

    from mmdistill.datasets import DigitsDataset
    from mmdistill.registry import LOOPS
    model = tiny_teacher()
    ext = dict(type='classifier', checkpoint=CLS_CKPT)
    evaluator = Evaluator([
        FID(fake_nums=20, extractor=ext,
            sample_kwargs=dict(steps=2, guidance=1.0)),
        FID(fake_nums=20, extractor=ext, real_nums=100,
            sample_kwargs=dict(steps=2, guidance=1.0), prefix='FIDr100')])
    runner = _StubRunner(model)
    loader = DataLoader(DigitsDataset(split='test'), batch_size=50)
    loop = LOOPS.build(dict(
        type=f'Generative{kind.capitalize()}Loop', runner=runner,
        dataloader=loader, evaluator=evaluator, batch_size=8,
        progress=False))
    res = loop.run()
    assert set(res) == {'FID-20/2step-w1', 'FIDr100-20/2step-w1'}
    # the loop compared with the data set's images
    ext_m = build_extractor(ext)
    x, _ = load_digits_split('test')
    imgs, _ = SampleSource(model, dict(steps=2, guidance=1.0))(
        list(range(20)))
    fake = ext_m.extract(imgs)['features']
    real = ext_m.extract(torch.as_tensor(x).float())['features']
    assert res['FID-20/2step-w1'] == pytest.approx(
        fid_from_features(fake, real), rel=1e-6)
    assert res['FIDr100-20/2step-w1'] == pytest.approx(
        fid_from_features(fake, real[:100]), rel=1e-6)
    names = [h for h, _ in runner.hooks]
    assert names[0] == f'before_{kind}' and names[-1] == f'after_{kind}'
    assert dict(runner.hooks)[f'after_{kind}_epoch']['metrics'] == res


class _EchoMetric:
    """A generative metric that reports the loop's evaluation settings."""

    def evaluate_generative(self, ctx):
        return {'batch_size': ctx.batch_size, 'progress': ctx.progress}


@pytest.mark.parametrize('cfg,phase,progress', [
    (dict(type='GenerativeTestLoop'), 'test', True),
    (dict(type='GenerativeValLoop'), 'val', False),
    (dict(type='GenerativeValLoop', progress=True), 'val', True),
    (dict(type='GenerativeLoop'), 'test', True),
    (dict(type='GenerativeLoop', phase='val'), 'val', False),
])
def test_generative_loop_phase_selects_hooks_and_defaults(cfg, phase,
                                                          progress):
    from types import SimpleNamespace

    from mmdistill.registry import LOOPS
    runner = _StubRunner(torch.nn.Linear(1, 1))
    # metrics without evaluate_generative are skipped
    evaluator = SimpleNamespace(metrics=[_EchoMetric(), object()])
    loop = LOOPS.build(dict(cfg, runner=runner, dataloader=None,
                            evaluator=evaluator, batch_size=7))
    assert loop.run() == {'batch_size': 7, 'progress': progress}
    assert [h for h, _ in runner.hooks] == [
        f'before_{phase}', f'before_{phase}_epoch', f'after_{phase}_epoch',
        f'after_{phase}']
    assert runner.hooks[2][1] == dict(metrics={'batch_size': 7,
                                               'progress': progress})


def test_generative_loop_bad_phase():
    from types import SimpleNamespace

    from mmdistill.engine.loops import GenerativeLoop
    with pytest.raises(ValueError, match="phase must be one of"):
        GenerativeLoop(_StubRunner(torch.nn.Linear(1, 1)), None,
                       SimpleNamespace(metrics=[]), phase='train')
