"""Package, data, teacher model and exact resume."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_on_modern_stack_without_broken_mmagic_parts():
    code = (
        'import sys, numpy, mmdistill\n'
        'from importlib.metadata import version\n'
        'assert int(numpy.__version__.split(".")[0]) >= 2, numpy.__version__\n'
        'assert version("mmcv-lite")\n'
        'bad = [m for m in sys.modules if m.split(".")[:2] in [["mmagic", p] '
        'for p in ("models", "evaluation", "utils", "structures", "engine", '
        '"datasets")]]\n'
        'assert not bad, bad\n'
        'assert "torchvision" not in sys.modules\n'
        'from mmdistill.registry import MODELS\n'
        'import mmagic.registry as R\n'
        'assert MODELS.parent is R.MODELS and MODELS.scope == "mmdistill"\n'
        'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]


def test_digits_split_is_fixed_stratified_and_scaled():
    from mmdistill.datasets import DigitsDataset, load_digits_split
    from sklearn.datasets import load_digits
    tr, te = DigitsDataset('train'), DigitsDataset('test')
    assert len(tr) == 1437 and len(te) == 360
    assert tr.images.min() >= -1 and tr.images.max() <= 1
    full = load_digits()
    # every class keeps its share (stratified), within one image
    for c in range(10):
        share = (full.target == c).mean()
        assert abs(int((te.labels == c).sum()) - 360 * share) <= 1
    # train and test are disjoint images of the original set
    x_tr, _ = load_digits_split('train')
    x_te, _ = load_digits_split('test')
    a = {xx.tobytes() for xx in x_tr}
    assert sum(xx.tobytes() in a for xx in x_te) <= 5  # a few exact dups exist
    item = tr[0]
    assert item['inputs'].shape == (1, 8, 8)
    assert DigitsDataset('train', image_size=16)[0]['inputs'].shape == (1, 16,
                                                                        16)
    # values follow (v / 16) * 2 - 1 exactly
    x_all, y_all = load_digits_split('all')
    assert np.allclose(x_all[:, 0], full.images / 8.0 - 1)


def _teacher(**kw):
    import mmdistill  # noqa: F401
    from mmdistill.registry import MODELS
    cfg = dict(type='CFGDiffusion', denoiser=dict(
        type='CompactUNet', base_channels=8, num_classes=10),
               num_classes=10, image_shape=(1, 8, 8))
    cfg.update(kw)
    return MODELS.build(cfg)


def test_condition_dropout_uses_null_class():
    m = _teacher(p_uncond=1.0)
    seen = []
    orig = m.net.forward
    m.net.forward = lambda z, t, y=None, w=None: (seen.append(y.clone()),
                                                  orig(z, t, y))[1]
    m.loss(torch.randn(6, 1, 8, 8), torch.arange(6))
    assert torch.all(seen[0] == 10)
    m = _teacher(p_uncond=0.0)
    seen.clear()
    m.net.forward = lambda z, t, y=None, w=None: (seen.append(y.clone()),
                                                  orig(z, t, y))[1]
    m.loss(torch.randn(6, 1, 8, 8), torch.arange(6))
    assert torch.equal(seen[0], torch.arange(6))


@pytest.mark.parametrize('warmup', [False, True])
def test_ema_update_rule(warmup):
    m = _teacher(ema=dict(decay=0.9, warmup=warmup))
    for n in (1, 2, 30):
        while int(m.num_updates) < n - 1:
            m.update_ema()
        before = [p.clone() for p in m.net_ema.parameters()]
        with torch.no_grad():
            for p in m.net.parameters():
                p.add_(1.0)
        m.update_ema()  # update number n
        d = min(0.9, (1 + n) / (10 + n)) if warmup else 0.9
        for b, pe, p in zip(before, m.net_ema.parameters(),
                            m.net.parameters()):
            assert torch.allclose(pe, d * b + (1 - d) * p)


def test_guided_x_fn_is_one_batched_call_and_matches_cfg():
    from mmdistill.diffusion import cfg_combine
    m = _teacher()
    calls = []
    orig = m.net.forward
    m.net.forward = lambda z, t, y=None, w=None: (calls.append(len(z)),
                                                  orig(z, t, y))[1]
    z, t, y = torch.randn(4, 1, 8, 8), torch.full((4, ), 0.5), torch.arange(4)
    w = torch.full((4, ), 2.0)
    out = m.guided_x_fn(y, w, 'orig')(z, t)
    assert calls == [8]
    x_c = m.x_hat(m.net, z, t, y)
    x_u = m.x_hat(m.net, z, t, torch.full_like(y, 10))
    assert torch.allclose(out, cfg_combine(x_c, x_u, w), atol=1e-6)


def _runner_cfg(work_dir, max_iters, name):
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(ROOT,
                                       'configs/teacher/cfg_unet_digits.py'))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.train_cfg.max_iters = max_iters
    cfg.train_dataloader.batch_size = 16
    cfg.model.denoiser.base_channels = 8
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.logger.interval = 1
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1,
                                by_epoch=False, begin=0, end=6)]
    cfg.log_level = 'WARNING'
    return cfg


def test_resume_continues_exactly(tmp_path):
    """An interrupted run resumed from its iter-3 checkpoint ends with the same
    weights (and EMA) as an uninterrupted 6-iteration run."""
    from mmdistill.engine import DistillRunner
    full = DistillRunner.from_cfg(_runner_cfg(tmp_path / 'a', 6, 'full'))
    full.train()
    part = DistillRunner.from_cfg(_runner_cfg(tmp_path / 'b', 3, 'part'))
    part.train()
    cfg = _runner_cfg(tmp_path / 'b', 6, 'resumed')
    cfg.resume, cfg.load_from = True, str(tmp_path / 'b' / 'iter_3.pth')
    resumed = DistillRunner.from_cfg(cfg)
    resumed.train()
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert int(sb['num_updates']) == 6
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # and the checkpoint a run writes loads without unpickling objects
    ck = torch.load(tmp_path / 'a' / 'iter_6.pth', weights_only=True)
    assert 'state_dict' in ck and 'rng_state' in ck


def test_sample_cli_writes_grid(tmp_path):
    m = _teacher()
    ckpt = tmp_path / 'm.pth'
    torch.save({'state_dict': m.state_dict()}, ckpt)
    out = tmp_path / 'g.png'
    r = subprocess.run([
        sys.executable, 'tools/sample.py',
        'configs/teacher/cfg_unet_digits.py', str(ckpt), '--steps', '2',
        '--per-class', '3', '--upscale', '1', '--out', str(out),
        '--cfg-options', 'model.denoiser.base_channels=8'
    ], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    from PIL import Image
    im = np.asarray(Image.open(out))
    assert im.shape == (10 * 9 + 1, 3 * 9 + 1)  # 10 rows x 3, 8 px + 1 pad
