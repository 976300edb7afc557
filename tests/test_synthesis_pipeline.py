"""MGD3 synthesis pipeline: output layout, resume, refusal, latent DiT path."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdistill.synthesis import pipeline as pl
from mmdistill.synthesis.pipeline import Synthesizer
from mmdistill.utils import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER_CFG = os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py')


def _cfg(ckpt, **syn):
    return Config(dict(
        seed=0,
        generator=dict(type='PixelTeacherGenerator',
                       model_config=TEACHER_CFG, checkpoint=ckpt,
                       device='cpu'),
        real_data=dict(type='DigitsDataset', split='train'),
        mode_discovery=dict(type='KMeansModes', n_init=2),
        synthesis={**dict(ipc=2, steps=4, t_stop=2, guidance=1.0,
                          batch_size=8), **syn}))


def _pngs(folder):
    out = {}
    for c in sorted(os.listdir(folder)):
        if os.path.isdir(os.path.join(folder, c)):
            for f in sorted(os.listdir(os.path.join(folder, c))):
                with open(os.path.join(folder, c, f), 'rb') as fh:
                    out[f'{c}/{f}'] = fh.read()
    return out


def test_synthesis_layout_and_manifest(tmp_path, teacher_ckpt):
    out = str(tmp_path / 'ds')
    man = Synthesizer(_cfg(teacher_ckpt), out, progress=False).run()
    files = _pngs(out)
    assert len(files) == 20 and man['total'] == 20
    assert man['status'] == 'complete' and man['seed'] == 0
    assert man['counts'] == {str(c): 2 for c in range(10)}
    assert man['modes']['shape'] == [10, 2, 1, 8, 8]
    with open(os.path.join(out, 'annotations.txt')) as f:
        ann = [ln.split() for ln in f.read().splitlines()]
    assert sorted(a[0] for a in ann) == sorted(files)
    assert all(a[0].split('/')[0] == a[1] for a in ann)
    modes = torch.load(os.path.join(out, 'modes.pt'), weights_only=True)
    assert modes['modes'].shape == (10, 2, 1, 8, 8)
    # modes are k-means centres of the real pixels of their class
    from mmdistill.datasets import load_digits_split
    x, y = load_digits_split('train')
    idx = modes['nearest'][3].numpy()
    assert (y[idx] == 3).all()
    # the same config in a new folder gives byte-identical images
    out2 = str(tmp_path / 'ds2')
    Synthesizer(_cfg(teacher_ckpt), out2, progress=False).run()
    assert _pngs(out2) == files


def test_modes_from_classifier_features(tmp_path, teacher_ckpt):
    """Clusters found on the digits classifier's features; the guidance
    targets are the pixel means (or medoids) of those clusters."""
    from sklearn.cluster import KMeans

    from mmdistill.datasets import load_digits_split
    from mmdistill.evaluation import build_extractor
    feat_cfg = dict(type='classifier')
    x, y = load_digits_split('train')
    feats = build_extractor(feat_cfg).extract(
        torch.as_tensor(x).float(), probs=False)['features'].double().numpy()
    got = {}
    for target in ('members_mean', 'medoid'):
        cfg = _cfg(teacher_ckpt)
        cfg.mode_discovery = dict(type='KMeansModes', n_init=2,
                                  embedding=feat_cfg, target=target)
        out = str(tmp_path / target)
        man = Synthesizer(cfg, out, progress=False).run()
        assert man['total'] == 20
        got[target] = torch.load(os.path.join(out, 'modes.pt'),
                                 weights_only=True)
    for c in (0, 7):
        rows = np.flatnonzero(y == c)
        km = KMeans(2, n_init=2, random_state=0).fit(feats[rows])
        want = sorted(x[rows][km.labels_ == j].mean(0).sum() for j in (0, 1))
        have = sorted(float(m.sum()) for m in got['members_mean']['modes'][c])
        assert np.allclose(have, want, atol=1e-4)
        near = got['medoid']['nearest'][c].numpy()
        assert (y[near] == c).all()
        assert torch.allclose(got['medoid']['modes'][c],
                              torch.as_tensor(x[near]).float())


def test_interrupted_run_resumes_without_redoing(tmp_path, teacher_ckpt,
                                                 monkeypatch):
    ref_dir = str(tmp_path / 'ref')
    Synthesizer(_cfg(teacher_ckpt, batch_size=4), ref_dir,
                progress=False).run()
    ref = _pngs(ref_dir)
    out = str(tmp_path / 'ds')
    saved = []
    real_save = pl.save_png

    def save_then_die(img, path):
        if len(saved) == 9:
            raise KeyboardInterrupt
        real_save(img, path)
        saved.append(path)

    monkeypatch.setattr(pl, 'save_png', save_then_die)
    with pytest.raises(KeyboardInterrupt):
        Synthesizer(_cfg(teacher_ckpt, batch_size=4), out,
                    progress=False).run()
    monkeypatch.setattr(pl, 'save_png', real_save)
    assert len(_pngs(out)) == 9
    with open(os.path.join(out, 'manifest.json')) as f:
        assert json.load(f)['status'] == 'running'
    before = {p: os.stat(p).st_mtime_ns for p in saved}
    # a truncated image is detected and redone
    with open(saved[0], 'wb') as f:
        f.write(b'\x89PNG broken')
    man = Synthesizer(_cfg(teacher_ckpt, batch_size=4), out,
                      progress=False).run()
    assert man['generated_this_run'] == 20 - 9 + 1
    assert all(os.stat(p).st_mtime_ns == before[p] for p in saved[1:])
    assert _pngs(out) == ref


def test_different_run_refused_unless_resume_or_overwrite(tmp_path,
                                                          teacher_ckpt):
    out = str(tmp_path / 'ds')
    Synthesizer(_cfg(teacher_ckpt), out, progress=False).run()
    other = _cfg(teacher_ckpt, lam=0.0)
    with pytest.raises(UserError, match='already holds a different '
                       'synthesis run.*--resume.*--overwrite'):
        Synthesizer(other, out, progress=False)
    s = Synthesizer(other, out, resume=True, progress=False, log=lambda m: 0)
    assert s.syn['lam'] == 0.1  # continues the saved run
    man = Synthesizer(other, out, overwrite=True, progress=False,
                      log=lambda m: 0).run()
    assert man['settings']['synthesis']['lam'] == 0.0
    assert man['generated_this_run'] == 20
    # --overwrite of the same run starts afresh
    man = Synthesizer(other, out, overwrite=True, progress=False,
                      log=lambda m: 0).run()
    assert man['generated_this_run'] == 20
    # invalid settings fail before the folder is touched
    with pytest.raises(UserError, match='lambda must be >= 0'):
        Synthesizer(_cfg(teacher_ckpt, lam=-1.0), out, overwrite=True,
                    progress=False)
    assert len(_pngs(out)) == 20
    stray = tmp_path / 'stray'
    stray.mkdir()
    (stray / 'notes.txt').write_text('x')
    with pytest.raises(UserError, match='not empty'):
        Synthesizer(other, str(stray), progress=False)


def test_bad_settings(tmp_path, teacher_ckpt):
    for syn, match in [(dict(lam=-1.0), 'lambda must be >= 0'),
                       (dict(t_stop=5), r't_stop must be an integer in '
                        r'\[0, steps=4\]'),
                       (dict(init='modes'), 'synthesis.init must be'),
                       (dict(source='gan'), 'synthesis.source must be')]:
        with pytest.raises(UserError, match=match):
            Synthesizer(_cfg(teacher_ckpt, **syn), str(tmp_path / 'x'),
                        progress=False)
    cfg = _cfg(teacher_ckpt, ipc=200)
    with pytest.raises(UserError, match='ipc=200 is larger than the'):
        Synthesizer(cfg, str(tmp_path / 'y'), progress=False).run()


def test_nearest_real_init_and_real_subset(tmp_path, teacher_ckpt):
    man = Synthesizer(_cfg(teacher_ckpt, init='nearest_real', lam=0.0,
                           t_init=0.5), str(tmp_path / 'n'),
                      progress=False).run()
    assert man['total'] == 20 and man['modes'] is not None
    out = str(tmp_path / 'r')
    Synthesizer(_cfg(teacher_ckpt, source='real_random', ipc=3), out,
                progress=False).run()
    from mmdistill.synthesis.evaluate import load_synthetic
    x, y = load_synthetic(out, 8, 1)
    from mmdistill.datasets import load_digits_split
    real, labels = load_digits_split('train')
    # every written image is one of the real images of its class
    q = np.round((real + 1) * 127.5) / 127.5 - 1
    for img, lab in zip(x.numpy(), y.numpy()):
        d = np.abs(q[labels == lab] - img).max(axis=(1, 2, 3))
        assert d.min() < 1e-6
    assert np.bincount(y.numpy()).tolist() == [3] * 10


@pytest.mark.slow  # two CLI start-ups (~10-40 s on a busy 2-core box)
def test_cli_refuses_a_different_run(tmp_path):
    out = str(tmp_path / 'd')
    cmd = [sys.executable, os.path.join(ROOT, 'tools/synthesize.py'),
           os.path.join(ROOT, 'configs/mgd3/mgd3_digits_ipc1.py'),
           '--out-dir', out, '--no-progress', '--cfg-options',
           'synthesis.source=real_random']
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cmd[:-1] + ['synthesis.source=real_full'],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(
        'error: output folder') and 'different synthesis run' in r.stderr


# -- the latent (DiT + VAE) path -----------------------------------------

@pytest.fixture(scope='module')
def tiny_dit(tmp_path_factory):
    from diffusers import AutoencoderKL, DiTTransformer2DModel
    root = tmp_path_factory.mktemp('dit')
    torch.manual_seed(0)
    DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4,
        out_channels=8, num_layers=1, sample_size=4, patch_size=2,
        num_embeds_ada_norm=3, norm_num_groups=4).save_pretrained(
            root / 'transformer')
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=('DownEncoderBlock2D', ) * 2,
        up_block_types=('UpDecoderBlock2D', ) * 2, block_out_channels=(8, 8),
        layers_per_block=1, norm_num_groups=4,
        sample_size=8).save_pretrained(root / 'vae')
    from diffusers import DDPMScheduler  # DiT's: linear betas, eps
    DDPMScheduler(beta_schedule='linear', beta_start=1e-4, beta_end=0.02,
                  prediction_type='epsilon').save_pretrained(
                      root / 'scheduler')
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in ('cat', 'dog', 'fox'):
        (root / 'data' / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                root / 'data' / c / f'{i}.png')
    return root


def test_dit_adapter_eps_and_time_mapping(tiny_dit):
    from mmdistill.synthesis.generators import DiTLatentGenerator
    gen = DiTLatentGenerator(str(tiny_dit / 'transformer'),
                             str(tiny_dit / 'vae'), device='cpu',
                             class_labels=[2, 0, 1])
    assert gen.num_classes == 3 and gen.sample_shape == (4, 4, 4)
    z = torch.randn(2, 4, 4, 4)
    t = torch.tensor([1.0, 0.5])
    labels = torch.tensor([0, 2])  # -> DiT labels 2, 1
    x = gen.x_fn(labels, 0.0)(z, t)
    # independent: the DiT at discrete step t * 1000 - 1, first 4 channels
    raw = gen.model.net.model  # the diffusers DiTTransformer2DModel
    out = raw(z, timestep=torch.tensor([999, 499]),
              class_labels=torch.tensor([2, 1])).sample
    assert out.shape[1] == 8
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000,
                                            dtype=torch.float64), 0)
    a = abar[[999, 499]].sqrt().float().view(-1, 1, 1, 1)
    s = (1 - abar[[999, 499]]).sqrt().float().view(-1, 1, 1, 1)
    assert torch.allclose(x, (z - s * out[:, :4]) / a, atol=1e-4, rtol=1e-4)
    # CFG on x equals (1 + w) x_c - w x_u with the null class 3
    out_u = raw(z, timestep=torch.tensor([999, 499]),
                class_labels=torch.tensor([3, 3])).sample
    x_u = (z - s * out_u[:, :4]) / a
    xg = gen.x_fn(labels, 3.0)(z, t)
    assert torch.allclose(xg, 4 * x - 3 * x_u, atol=1e-3, rtol=1e-3)
    # encode = latent mean x scaling factor (no shift factor here)
    img = torch.rand(1, 3, 8, 8) * 2 - 1
    mean = gen.model.data_preprocessor.vae.vae.encode(img).latent_dist.mean
    assert torch.allclose(gen.encode(img), mean * 0.18215, atol=1e-6)


def test_dit_latent_synthesis_end_to_end(tmp_path, tiny_dit):
    cfg = Config(dict(
        seed=1,
        generator=dict(type='DiTLatentGenerator',
                       transformer=str(tiny_dit / 'transformer'),
                       vae=str(tiny_dit / 'vae'), device='cpu'),
        real_data=dict(type='ImageFolderDataset',
                       data_root=str(tiny_dit / 'data'), image_size=8,
                       channels=3),
        mode_discovery=dict(type='KMeansModes', n_init=2),
        synthesis=dict(ipc=2, steps=4, t_stop=2, guidance=3.0, lam=0.1)))
    man = Synthesizer(cfg, str(tmp_path / 'o'), progress=False).run()
    assert man['counts'] == {'cat': 2, 'dog': 2, 'fox': 2}
    assert man['modes']['shape'] == [3, 2, 4, 4, 4]
    from PIL import Image
    with Image.open(tmp_path / 'o' / 'fox' / '00001.png') as im:
        assert im.size == (8, 8) and im.mode == 'RGB'


def test_dit_missing_folders(tmp_path, tiny_dit):
    from mmdistill.synthesis.generators import DiTLatentGenerator
    with pytest.raises(UserError, match='DiTTransformer2DModel .*folder '
                       'not found: .*nope'):
        DiTLatentGenerator(str(tmp_path / 'nope'), str(tiny_dit / 'vae'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match=r'VAE\) not found: missing .*empty'
                       r'.*config\.json') as e:
        DiTLatentGenerator(str(tiny_dit / 'transformer'),
                           str(tmp_path / 'empty'))
    assert '\n' not in str(e.value)
