"""The digits experiments' shared parts: one way to load a student
(``mmdistill.apis.load_student``), one sample generator and scorer for the
demo, latent and zoo reports, one stage runner's config writer."""
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from _distill_helpers import randomize  # noqa: E402

STAGE2 = os.path.join(ROOT, 'configs/progressive/progressive_digits_32to1.py')
TINY = {'model.student.base_channels': 8, 'model.student.num_res_blocks': 1}


def _student_file(tmp_path, n=4, dump=True):
    """A trained-looking progressive student written as
    ``student_{n}step.pth`` (``net.*`` and ``num_steps``) in a work dir
    that holds the dumped config; returns (reference model, path)."""
    from mmdistill.apis import init_model, load_config
    cfg = load_config(STAGE2)
    cfg.merge_from_dict(dict(TINY, **{'model.teacher_ckpt': None}))
    ref = init_model(cfg)
    randomize(ref.net, std=0.05, seed=3)
    ref.num_steps.fill_(n)
    state = {f'net.{k}': v for k, v in ref.net.state_dict().items()}
    state['num_steps'] = ref.num_steps.clone()
    path = tmp_path / f'student_{n}step.pth'
    torch.save(state, path)
    if dump:
        # what a training run leaves beside its student files; the teacher
        # it names is gone, which must not matter for the student
        cfg.model.teacher_ckpt = str(tmp_path / 'deleted_stage1.pth')
        cfg.dump(str(tmp_path / 'progressive_digits_32to1.py'))
    return ref, str(path)


def test_load_student_is_the_trained_student(tmp_path):
    from mmdistill.apis import load_student
    ref, path = _student_file(tmp_path)
    st = load_student(path)  # the config dumped beside it
    assert int(st.num_steps) == 4
    for k, v in ref.net.state_dict().items():
        assert torch.equal(st.net.state_dict()[k], v), k
        assert torch.equal(st.pick_net('ema').state_dict()[k], v), k
    labels = torch.arange(3)
    noise = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = ref.sample(labels, noise=noise, steps=4, guidance=2.0)
        b = st.sample(labels, noise=noise, steps=4, guidance=2.0)
    assert torch.equal(a, b)


@pytest.mark.parametrize('n_configs', [0, 2])
def test_load_student_without_a_single_config_says_so(tmp_path, n_configs):
    from mmdistill.apis import load_student
    from mmdistill.utils import UserError
    _, path = _student_file(tmp_path, dump=False)
    for i in range(n_configs):
        (tmp_path / f'c{i}.py').write_text('model = dict()\n')
    with pytest.raises(UserError, match=f'holds {n_configs} config files'):
        load_student(path)
    # an explicit config is the fix
    cfg_path = tmp_path / 'given' / 'stage2.py'
    cfg_path.parent.mkdir()
    from mmdistill.apis import load_config
    cfg = load_config(STAGE2)
    cfg.merge_from_dict(TINY)
    cfg.dump(str(cfg_path))
    assert int(load_student(path, str(cfg_path)).num_steps) == 4


def test_generate_is_per_sample_and_batch_independent(tmp_path):
    """Sample i has label i % K and its own seed, whatever the batching:
    the same images as sampling each one alone."""
    from projects.digits.report import generate
    ref, _ = _student_file(tmp_path, dump=False)
    kw = dict(steps=2, guidance=1.0, sampler='ddim')
    with torch.no_grad():
        imgs, labels, _ = generate(ref, 5, kw, base_seed=7, batch_size=2)
        assert labels.tolist() == [i % ref.num_classes for i in range(5)]
        for i in range(5):
            g = torch.Generator().manual_seed(7 + i)
            noise = torch.randn((1, ) + tuple(ref.image_shape), generator=g)
            one = ref.sample(torch.tensor([i % ref.num_classes]),
                             noise=noise, generator=[g], **kw)
            torch.testing.assert_close(imgs[i:i + 1], one, rtol=0, atol=1e-5)


def test_scorer_on_real_digits():
    """The classifier features put the real test set near the training set
    (FID of a set against itself is 0) and classify it correctly."""
    from mmdistill.datasets import DigitsDataset
    from projects.digits.report import DigitsScorer
    sc = DigitsScorer()
    train, test = DigitsDataset('train'), DigitsDataset('test')
    m_train = sc.metrics(*sc.features(train.images), train.labels)
    m_test = sc.metrics(*sc.features(test.images), test.labels,
                        f_ref=sc.features(test.images)[0])
    assert abs(m_train['fid_real']) < 1e-3  # sqrtm round-off
    assert abs(m_test['fid_teacher']) < 1e-3
    assert 0 < m_test['fid_real'] < 20 and m_test['acc'] > 90
    assert m_train['fid_teacher'] is None


def test_stage_config_holds_the_overrides(tmp_path):
    """A stage's config file is the shipped config with the overrides
    merged (list indices and whole dicts too), everything else unchanged."""
    from mmengine.config import Config

    from mmdistill.apis import load_config
    from projects.digits.stages import write_stage_config
    src = 'configs/teacher/cfg_unet_digits.py'
    pre = dict(type='LatentDataPreprocessor', vae='some/vae',
               encode_inputs=False)
    path = write_stage_config(src, {
        'train_cfg.max_iters': 7, 'param_scheduler.0.end': 3,
        'model.data_preprocessor': pre}, str(tmp_path / 'c' / 'cfg.py'))
    got, orig = Config.fromfile(path), load_config(os.path.join(ROOT, src))
    assert got.train_cfg.max_iters == 7
    assert got.param_scheduler[0].end == 3
    assert got.model.data_preprocessor.to_dict() == pre
    assert got.model.denoiser.to_dict() == orig.model.denoiser.to_dict()
    assert got.param_scheduler[1].to_dict() == \
        orig.param_scheduler[1].to_dict()


def test_measure_row_extras_and_cache(tmp_path):
    """The zoo's rows carry extra entries (``table``, ``n``); a cached
    sample set is read back instead of sampled again."""
    from projects.digits.report import DigitsScorer
    ref, _ = _student_file(tmp_path, dump=False)
    sc = DigitsScorer()
    cache = str(tmp_path / 'c' / 'ref.pt')
    with torch.no_grad():
        row, f = sc.measure('student', ref, 20, 2, 0.0, 2, cache=cache,
                            table='main', n=20)
    assert (row['table'], row['n'], row['nfe']) == ('main', 20, 2)
    assert os.path.isfile(cache)

    def no_sampling(*a, **k):
        raise AssertionError('sampled although the cache exists')

    ref.sample = no_sampling
    again, f2 = sc.measure('student', ref, 20, 2, 0.0, 2, cache=cache)
    assert again['fid_real'] == row['fid_real'] and torch.equal(f, f2)


def test_sample_tool_loads_a_zoo_student_without_its_teacher(tmp_path):
    """tools/sample.py with the shipped stage-2 config (whose teacher_ckpt
    names a stage-1 file that does not exist here) and a zoo student."""
    import subprocess
    cfg = 'configs/progressive/progressive_digits_128to1.py'
    from mmdistill.apis import load_config
    assert not os.path.exists(os.path.join(
        ROOT, load_config(os.path.join(ROOT, cfg)).model.teacher_ckpt))
    out = tmp_path / 'grid.png'
    r = subprocess.run([sys.executable, 'tools/sample.py', cfg,
                        'checkpoints/digits_student_1step.pth', '--steps',
                        '1', '--guidance', '2', '--out', str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.stat().st_size > 0
