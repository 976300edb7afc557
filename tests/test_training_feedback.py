"""Training-time feedback: the sample-grid hook, the validation pass with
save_best on the digits configs, and readable grids."""
import glob
import os

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER = os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py')
DIGITS_CONFIGS = [
    'configs/teacher/cfg_unet_digits.py',
    'configs/guided_distill/guided_distill_digits.py',
    'configs/progressive/progressive_digits_32to1.py',
    'configs/progressive/progressive_digits_128to1.py',
]


def _tiny_teacher_cfg(work_dir, iters=4, grid=True, val=True):
    """The shipped teacher config, shrunk: a width-8 UNet, batch 16, a
    2-step validation of 20 samples every 2 iterations."""
    from mmdistill.utils.config import load_config
    cfg = load_config(TEACHER, [
        'model.denoiser.base_channels=8', 'train_dataloader.batch_size=16',
        f'train_cfg.max_iters={iters}', 'train_cfg.val_interval=2',
        'default_hooks.logger.interval=1', 'log_level=WARNING',
        'val_evaluator.metrics.0.fake_nums=20',
        'val_evaluator.metrics.0.sample_kwargs.steps=2',
        f'val_evaluator.metrics.0.real_stats_cache={work_dir}/stats',
    ])
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = os.path.basename(str(work_dir))
    hooks = [h for h in cfg.custom_hooks if h['type'] != 'SampleGridHook']
    if grid:
        hooks.append(dict(type='SampleGridHook', interval=1, per_class=2,
                          steps=2, cell=16))
    cfg.custom_hooks = hooks
    if not val:
        for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
            cfg[key] = None
        cfg.default_hooks.checkpoint.pop('save_best', None)
    return cfg


def _train(cfg):
    from mmdistill.engine import DistillRunner
    runner = DistillRunner.from_cfg(cfg)
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


@pytest.mark.parametrize('path', DIGITS_CONFIGS)
def test_digits_configs_have_grid_hook_and_validation(path):
    from mmdistill.utils.config import load_config
    cfg = load_config(os.path.join(ROOT, path))
    grids = [h for h in cfg.custom_hooks if h['type'] == 'SampleGridHook']
    assert len(grids) == 1
    # the grid interval divides the schedule (a grid at every halving)
    assert cfg.train_cfg.max_iters % grids[0]['interval'] == 0
    assert cfg.val_cfg.type == 'GenerativeValLoop'
    assert cfg.val_evaluator.metrics[0].fake_nums == 1000
    assert cfg.default_hooks.checkpoint.save_best == 'auto'
    assert cfg.default_hooks.checkpoint.rule == 'less'
    # the demo finds the halving hook by type; it stays at index 1
    if 'progressive' in path:
        assert cfg.custom_hooks[1]['type'] == 'ProgressiveDistillationHook'


def test_grid_hook_and_validation_do_not_change_training(tmp_path):
    """Training with the sample-grid hook (a grid every iteration) and a
    validation pass every 2 iterations gives bit-identical weights to
    training without either; the grids are PNGs of the visualizer and the
    best checkpoint is kept."""
    torch.manual_seed(0)
    with_feedback = _train(_tiny_teacher_cfg(tmp_path / 'a'))
    torch.manual_seed(0)
    without = _train(_tiny_teacher_cfg(tmp_path / 'b', grid=False,
                                       val=False))
    assert with_feedback.keys() == without.keys()
    for k in without:
        assert torch.equal(with_feedback[k], without[k]), k
    pngs = sorted(glob.glob(str(tmp_path / 'a' / '*' / 'vis_data' /
                                'vis_image' / 'samples_*.png')))
    assert [os.path.basename(p) for p in pngs] == [
        f'samples_{i}.png' for i in (1, 2, 3, 4)]
    from PIL import Image
    img = np.asarray(Image.open(pngs[-1]))
    # 10 classes x 2 per class, 8x8 digits drawn at 16 px, 1 px padding
    assert img.shape == (10 * 17 + 1, 2 * 17 + 1, 3)
    assert glob.glob(str(tmp_path / 'a' / 'best_FID-20_2step-w0_iter_*.pth'))
    assert not glob.glob(str(tmp_path / 'b' / '*' / 'vis_data' /
                             'vis_image'))


def test_grid_is_fixed_and_preserves_rng_and_mode():
    from mmdistill.engine.hooks import SampleGridHook
    from mmdistill.registry import MODELS
    from mmdistill.utils.config import load_config
    cfg = load_config(TEACHER, ['model.denoiser.base_channels=8'])
    model = MODELS.build(cfg.model).train()
    sample = model.sample

    def greedy_sample(*args, **kwargs):
        torch.rand(7)  # a sampler that draws from the global generator
        return sample(*args, **kwargs)

    model.sample = greedy_sample
    hook = SampleGridHook(per_class=1, steps=2, cell=8, guidance=1.0)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = hook.draw(model)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training
    b = hook.draw(model)
    assert np.array_equal(a, b) and a.shape == (10 * 9 + 1, 9 + 1, 3)


def test_make_grid_upscale_and_tight():
    from mmdistill.utils.image import make_grid
    imgs = torch.linspace(-1, 1, 3 * 4).view(3, 1, 2, 2)
    g = make_grid(imgs, nrow=2, pad=1)
    assert g.shape == (2 * 3 + 1, 2 * 3 + 1)
    up = make_grid(imgs, nrow=2, pad=1, upscale=3)
    assert up.shape == (2 * 7 + 1, 2 * 7 + 1)
    # nearest: each source pixel is a 3x3 block
    assert (up[1:4, 1:4] == up[1, 1]).all()
    tight = make_grid(imgs, nrow=5, pad=2, upscale=2, tight=True)
    # no border, no empty columns for the missing images
    assert tight.shape == (4, 3 * 4 + 2 * 2)
    assert make_grid(imgs, nrow=2, cell=8).shape == make_grid(
        imgs, nrow=2, upscale=4).shape
    with pytest.raises(ValueError):
        make_grid(imgs, nrow=0)
