"""Smoke tests of the shipped distillation configs: CIFAR-10 32x32 and
ImageNet 64x64 stage 1 -> stage 2 on a tiny generated class folder (a few
iterations, narrow networks), and the digits configs' structure."""
import os
import re

import numpy as np
import pytest
import torch

from mmdistill.apis import load_config
from mmdistill.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_folder(root, size, classes=2, per_class=3):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in range(classes):
        os.makedirs(root / f'class{c}', exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / f'class{c}' / f'{i}.png')
    return root


def progressive_hook(cfg):
    hooks = [h for h in cfg.custom_hooks
             if h.type == 'ProgressiveDistillationHook']
    assert len(hooks) == 1
    return hooks[0]


def tiny(den):
    return dict(den, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                attn_levels=())


def run(cfg, work_dir):
    from mmdistill.engine import DistillRunner
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.logger.interval = 1
    runner = DistillRunner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('name,size,stage2,n_start', [
    ('cifar10', 32, 'progressive_cifar10_4096to1', 4096),
    ('imagenet64', 64, 'progressive_imagenet64_512to1', 512),
])
def test_image_folder_configs_smoke(tmp_path, repo_root, name, size, stage2,
                                    n_start):
    data = make_folder(tmp_path / 'data', size)
    cfg = load_config(os.path.join(repo_root, 'configs', 'guided_distill',
                                   f'guided_distill_{name}.py'))
    # the shipped (paper) settings
    assert cfg.model.type == 'GuidanceDistiller'
    assert cfg.model.teacher.image_shape == (3, size, size)
    teacher_cfg = dict(cfg.model.teacher)
    teacher_cfg['denoiser'] = tiny(teacher_cfg['denoiser'])
    teacher = MODELS.build(teacher_cfg)
    torch.save({'state_dict': teacher.state_dict()}, tmp_path / 't.pth')
    cfg.model.teacher = teacher_cfg
    cfg.model.teacher_ckpt = str(tmp_path / 't.pth')
    cfg.train_dataloader.dataset.data_root = str(data)
    cfg.train_cfg.max_iters = 2
    cfg.param_scheduler[0].end = 2
    runner = run(cfg, tmp_path / 's1')
    assert runner.iter == 2
    in_opt = {id(p) for g in runner.optim_wrapper.optimizer.param_groups
              for p in g['params']}
    assert not in_opt & {id(p) for p in runner.model.teacher.parameters()}
    ckpt1 = tmp_path / 's1' / 'iter_2.pth'
    assert ckpt1.is_file()

    cfg2 = load_config(os.path.join(repo_root, 'configs', 'progressive',
                                    f'{stage2}.py'))
    assert cfg2.model.num_steps == n_start
    hook = progressive_hook(cfg2)
    assert 'n_start' not in hook and hook.n_end == 1
    assert cfg2.train_cfg.max_iters == hook.iters_per_stage * (
        n_start.bit_length())
    cfg2.model.student = tiny(cfg2.model.student)
    cfg2.model.teacher_ckpt = str(ckpt1)
    cfg2.model.num_steps = 2
    cfg2.custom_hooks = [dict(type='PortableCheckpointHook'),
                         dict(type='ProgressiveDistillationHook', n_start=2,
                              n_end=1, iters_per_stage=1)]
    cfg2.train_dataloader.dataset.data_root = str(data)
    cfg2.train_cfg.max_iters = 2
    cfg2.param_scheduler[0].end = 1
    runner = run(cfg2, tmp_path / 's2')
    assert int(runner.model.num_steps) == 1
    for n in (2, 1):
        st = torch.load(tmp_path / 's2' / f'student_{n}step.pth',
                        weights_only=True)
        assert st['meta']['num_steps'] == n
    out = runner.model.sample(torch.tensor([0, 1]), guidance=1.0)
    assert out.shape == (2, 3, size, size)


def test_digits_configs(repo_root):
    s1 = load_config(os.path.join(repo_root, 'configs', 'guided_distill',
                                  'guided_distill_digits.py'))
    assert s1.model.teacher.type == 'CFGDiffusion'
    assert s1.model.teacher_ckpt == 'checkpoints/digits_teacher.pth'
    assert (s1.model.w_min, s1.model.w_max) == (0.0, 4.0)
    s2 = load_config(os.path.join(repo_root, 'configs', 'progressive',
                                  'progressive_digits_32to1.py'))
    hook = progressive_hook(s2)
    # 64-step first teacher: students 32 -> 1, within max_iters
    assert 2 * s2.model.num_steps == 64 and hook.n_end == 1
    assert hook.iters_per_stage * 6 <= s2.train_cfg.max_iters


def test_digits_zoo_stage2_config(repo_root):
    """The model-zoo recipe: the 256-step stage-1 sampler is the first
    teacher, 8 halvings (128 -> 1 student steps) fit max_iters exactly."""
    s2 = load_config(os.path.join(repo_root, 'configs', 'progressive',
                                  'progressive_digits_128to1.py'))
    hook = progressive_hook(s2)
    assert 2 * s2.model.num_steps == 256 and hook.n_end == 1
    assert 'n_start' not in hook  # N is set once, in model.num_steps
    assert hook.iters_per_stage * 8 == s2.train_cfg.max_iters
    assert s2.param_scheduler[0].end == hook.iters_per_stage


PROGRESSIVE_CONFIGS = sorted(
    os.path.relpath(os.path.join(d, f), ROOT)
    for d, _, files in os.walk(os.path.join(ROOT, 'configs'))
    for f in files if re.fullmatch(r'progressive_.*_\d+to\d+\.py', f))


def test_progressive_configs_found():
    assert len(PROGRESSIVE_CONFIGS) >= 7


@pytest.mark.parametrize('path', PROGRESSIVE_CONFIGS)
def test_progressive_config_names(path):
    """progressive_<data>_<N_start>to<N_end>.py: the first student takes
    N_start = model.num_steps steps (set only there), the last N_end; one
    halving schedule of iters_per_stage per N fills max_iters, or an
    explicit ``stages`` list (N halving from N_start to N_end) whose
    lengths fill it, with the one-stage scheduler written for the first."""
    n_start, n_end = map(int, re.search(r'_(\d+)to(\d+)\.py$',
                                        path).groups())
    cfg = load_config(os.path.join(ROOT, path))
    hook = progressive_hook(cfg)
    assert cfg.model.type == 'ProgressiveDistiller'
    assert 'n_start' not in hook
    halvings = (n_start // n_end).bit_length()
    if 'stages' in hook:
        ns = [n for n, _ in hook.stages]
        assert cfg.model.num_steps == ns[0] == n_start and ns[-1] == n_end
        assert ns == [n_start >> k for k in range(halvings)]
        assert cfg.train_cfg.max_iters == sum(k for _, k in hook.stages)
        assert cfg.param_scheduler[0].end == hook.stages[0][1]
        return
    assert cfg.model.num_steps == n_start and hook.n_end == n_end
    assert cfg.train_cfg.max_iters == halvings * hook.iters_per_stage
    assert cfg.param_scheduler[0].end == hook.iters_per_stage


@pytest.mark.parametrize('stage1,stage2,n_stage1,p_w_min', [
    ('guided_distill_ddpm_digits_v_anchor',
     'progressive_ddpm_digits_v_anchor_128to1', 6000, 0.75),
    ('guided_distill_dit_digits_v_anchor',
     'progressive_dit_digits_v_anchor_128to1', 6000, 0.9),
])
def test_anchored_v_recipes(stage1, stage2, n_stage1, p_w_min):
    """The anchored recipes: the same share of each batch at w = 0 in both
    stages, a stage 1 of the documented length whose lr schedule spans it,
    and a stage 2 that starts from that run's last checkpoint by default."""
    s1 = load_config(os.path.join(ROOT, 'configs', 'guided_distill',
                                  f'{stage1}.py'))
    s2 = load_config(os.path.join(ROOT, 'configs', 'progressive',
                                  f'{stage2}.py'))
    n = s1.train_cfg.max_iters
    assert n == n_stage1 and s1.param_scheduler[0].end == n
    assert s1.model.p_w_min == s2.model.p_w_min == p_w_min
    assert s1.model.student_prediction_type == 'v'
    keys = s1.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {})
    assert keys.get('guidance_emb', {}).get('lr_mult', 1.0) == 1.0
    assert s2.model.teacher_ckpt == f'work_dirs/{stage1}/iter_{n}.pth'
