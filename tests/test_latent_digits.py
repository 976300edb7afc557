"""The latent-space digits pipeline: the resampling between 16x16 decoded
images and the 8x8 classifier, and ``tools/latent_digits.py --quick`` end to
end (VAE -> cache -> teacher -> stage 1 -> progressive -> report)."""
import importlib.util
import json
import os

import pytest
import torch
import torch.nn.functional as F

from projects.digits.vae import (bilinear_matrix,
                                                downsample_exact, upsample)
from mmdistill.utils import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'latent_digits_tool', os.path.join(ROOT, 'tools/latent_digits.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bilinear_matrix_is_what_interpolate_does():
    # 1-D: 8 -> 16 with align_corners=False: output 2i sits at input
    # coordinate i - 1/4, output 2i + 1 at i + 1/4 (edges clamped)
    m = bilinear_matrix(8, 16)
    assert m.shape == (16, 8)
    assert torch.allclose(m[0], torch.eye(8, dtype=m.dtype)[0])
    row4, row5 = torch.zeros(8, dtype=m.dtype), torch.zeros(8,
                                                           dtype=m.dtype)
    row4[1], row4[2] = 0.25, 0.75  # coordinate 1.75
    row5[2], row5[3] = 0.75, 0.25  # coordinate 2.25
    torch.testing.assert_close(m[4], row4)
    torch.testing.assert_close(m[5], row5)
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    sep = torch.einsum('ij,bcjk,lk->bcil', m.float(), x, m.float())
    torch.testing.assert_close(sep, F.interpolate(
        x, size=(16, 16), mode='bilinear', align_corners=False))


def test_downsample_exact_inverts_the_digits_upsampling():
    from mmdistill.datasets import DigitsDataset
    small, big = DigitsDataset('test'), DigitsDataset('test', image_size=16)
    torch.testing.assert_close(upsample(small.images, 16), big.images)
    back = downsample_exact(big.images)
    assert back.shape == small.images.shape
    torch.testing.assert_close(back, small.images, atol=1e-5, rtol=0)
    # average pooling, the obvious alternative, blurs: it is not an inverse
    assert (F.avg_pool2d(big.images, 2) - small.images).abs().max() > 0.1
    with pytest.raises(UserError, match='square images'):
        downsample_exact(torch.zeros(1, 1, 4, 4))


def test_settings_reject_bad_input():
    tool = _tool()
    with pytest.raises(UserError, match='power of two'):
        tool.settings(tool.parse_args(['--n-start', '12']))
    with pytest.raises(UserError, match='teacher-iters must be positive'):
        tool.settings(tool.parse_args(['--teacher-iters', '0']))
    with pytest.raises(UserError, match='at least 10'):
        tool.settings(tool.parse_args(['--num-samples', '5']))


def test_quick_pipeline_end_to_end(tmp_path, capsys):
    from diffusers import AutoencoderKL

    from mmdistill.datasets import LatentCacheDataset
    tool = _tool()
    wd = tmp_path / 'latent'
    tool.run(['--quick', '--no-pictures', '--work-dir', str(wd)])
    # the evaluation does not switch autograd off for the caller
    assert torch.is_grad_enabled()
    # the VAE is a diffusers folder; its shift / scale put the cached
    # training latents at mean 0 and standard deviation 1
    vae = AutoencoderKL.from_pretrained(str(wd / 'vae' / 'vae'))
    assert vae.config.latent_channels == 4
    cache = LatentCacheDataset(str(wd / 'latent_cache'))
    assert len(cache) == 1437 and cache.latents.shape[1:] == (4, 4, 4)
    z = cache.latents.float()
    assert abs(float(z.mean())) < 1e-2 and abs(float(z.std()) - 1) < 1e-2
    for n in (1, 2, 4, 8):
        assert (wd / 'progressive' / f'student_{n}step.pth').is_file()
    report = json.load(open(wd / 'report.json'))
    rows = report['rows']
    assert report['n_eval'] == 20
    names = [r['model'] for r in rows]
    assert names[:3] == ['real test (360)', 'VAE reconstruction, train '
                         '(1437)', 'VAE reconstruction, test (360)']
    students = [r for r in rows if r['model'] == 'student']
    assert sorted({r['steps'] for r in students}) == [1, 2, 4, 8]
    assert {r['w'] for r in students} == {0.0, 2.0}
    for r in rows:
        if r['model'] == 'student':
            assert r['nfe'] == r['steps'] and r['fid_teacher'] is not None
        if r['model'] == 'teacher':
            assert r['nfe'] == r['steps'] * (2 if r['w'] else 1)
        assert 0 <= r['acc'] <= 100 and r['fid_real'] >= 0
    assert (wd / 'report.md').read_text().count('| student |') == 8
    capsys.readouterr()
    # a second run reuses every trained stage
    tool.run(['--quick', '--no-pictures', '--work-dir', str(wd)])
    assert capsys.readouterr().out.count('reusing') == 4
