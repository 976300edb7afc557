"""Smoke tests of the DiT-XL/2 and SD-1.5 configs on tiny random models of
the same families built in a temporary folder (paths and sizes overridden,
nothing downloaded): stage 1 and a stage-2 halving through the runner, then
tools/export.py on the result."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import mmdistill  # noqa: F401
from mmdistill.apis import load_config
from _tiny_diffusers import make_tiny_dit, make_tiny_sd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = dict(
    dit=dict(stage1='configs/guided_distill/guided_distill_dit_xl2_256.py',
             stage2='configs/progressive/progressive_dit_xl2_256_32to1.py',
             path='checkpoints/DiT-XL-2-256', image_size=8,
             image_shape=(4, 4, 4), num_classes=10),
    sd=dict(stage1='configs/guided_distill/guided_distill_sd15_512.py',
            stage2='configs/progressive/progressive_sd15_512_16to1.py',
            path='checkpoints/stable-diffusion-v1-5', image_size=16,
            image_shape=(4, 8, 8), num_classes=0))


def _replace(obj, old, new):
    """Replace a string value everywhere in a config (the model path is
    repeated in the teacher, student and preprocessors)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _replace(v, old, new)
    elif isinstance(obj, (list, tuple)):
        return type(obj)(_replace(v, old, new) for v in obj)
    elif obj == old:
        return new
    return obj


def _write_data(root, family, size):
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    if family == 'dit':
        for c in ('n01', 'n02'):
            os.makedirs(os.path.join(root, c))
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (size, size, 3),
                                             dtype=np.uint8)).save(
                    os.path.join(root, c, f'{i}.png'))
        return
    with open(os.path.join(root, 'metadata.jsonl'), 'w') as f:
        for i, text in enumerate(['a red square', 'blue dots', 'a line',
                                  'green']):
            Image.fromarray(rng.integers(0, 255, (size, size, 3),
                                         dtype=np.uint8)).save(
                os.path.join(root, f'{i}.png'))
            f.write(json.dumps(dict(file_name=f'{i}.png', text=text)) + '\n')


def _cfg(path, fam, folder, data, work_dir, **extra):
    f = FAMILIES[fam]
    cfg = load_config(os.path.join(REPO, path))
    _replace(cfg._cfg_dict, f['path'], folder)
    opts = {
        'work_dir': work_dir,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.dataset.data_root': data,
        'train_dataloader.dataset.image_size': f['image_size'],
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1000,
    }
    opts.update(extra)
    cfg.merge_from_dict(opts)
    return cfg


@pytest.mark.slow  # two runner runs + export: ~15 s each on an idle 2-core
@pytest.mark.parametrize('fam', ['dit', 'sd'])
def test_config_smoke_stage1_stage2_export(fam, tmp_path):
    from mmdistill.engine import DistillRunner
    f = FAMILIES[fam]
    folder = str(tmp_path / 'model')
    (make_tiny_dit if fam == 'dit' else make_tiny_sd)(folder)
    data = str(tmp_path / 'data')
    _write_data(data, fam, f['image_size'])
    # the real sizes are in the configs
    real = load_config(os.path.join(REPO, f['stage2']))
    assert tuple(real.model.image_shape) == ((4, 32, 32) if fam == 'dit'
                                             else (4, 64, 64))
    w1 = str(tmp_path / 'stage1')
    cfg1 = _cfg(f['stage1'], fam, folder, data, w1, **{
        'train_cfg.max_iters': 3, 'param_scheduler': [],
        'model.ema.decay': 0.5})
    DistillRunner.from_cfg(cfg1).train()
    ckpt1 = os.path.join(w1, 'iter_3.pth')
    assert os.path.isfile(ckpt1)
    w2 = str(tmp_path / 'stage2')
    cfg2 = _cfg(f['stage2'], fam, folder, data, w2, **{
        'train_cfg.max_iters': 4, 'param_scheduler': [],
        'model.teacher_ckpt': ckpt1, 'model.num_steps': 2,
        'model.num_classes': f['num_classes'],
        'model.image_shape': f['image_shape'],
        'custom_hooks': [
            dict(type='PortableCheckpointHook'),
            dict(type='ProgressiveDistillationHook', n_start=2, n_end=1,
                 iters_per_stage=2)]})
    runner = DistillRunner.from_cfg(cfg2)
    runner.train()
    model = runner.model.module if hasattr(runner.model, 'module') else \
        runner.model
    assert int(model.num_steps) == 1
    assert os.path.isfile(os.path.join(w2, 'student_1step.pth'))
    cond = [1, 0] if fam == 'dit' else ['a red square', '']
    noise = torch.randn((2, ) + f['image_shape'])
    ours = model.sample(cond, noise=noise, steps=1, guidance=2.0)
    assert ours.shape == (2, 3, f['image_size'], f['image_size'])
    out_dir = str(tmp_path / 'export')
    ckpt2 = os.path.join(w2, 'iter_4.pth')
    if fam == 'dit':  # through the command line, from the dumped config
        cfg2.dump(str(tmp_path / 'cfg2.py'))
        r = subprocess.run(
            [sys.executable, os.path.join(REPO, 'tools/export.py'),
             str(tmp_path / 'cfg2.py'), ckpt2, out_dir, '--guidance', '2.0'],
            capture_output=True, text=True, cwd=REPO,
            env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert r.returncode == 0, r.stderr[-2000:]
    else:  # what tools/export.py does, in process
        from mmdistill.models.adapters.export import (default_steps,
                                                    export_student)
        from mmdistill.utils import load_student_checkpoint
        from mmdistill.registry import MODELS
        fresh = load_student_checkpoint(MODELS.build(cfg2.model), ckpt2)
        export_student(fresh, out_dir, default_steps(fresh), 2.0)
    with open(os.path.join(out_dir, 'mmdistill_pipeline.json')) as fh:
        meta = json.load(fh)
    assert meta['num_inference_steps'] == 1 and meta['latent']
    from mmdistill.models.adapters.export import load_pipeline
    theirs = load_pipeline(out_dir)(cond, num_inference_steps=1,
                                    guidance=2.0, noise=noise)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_export_cli_bad_input(tmp_path):
    r = subprocess.run(
        [sys.executable, os.path.join(REPO, 'tools/export.py'),
         os.path.join(REPO, 'configs/guided_distill/guided_distill_digits.py'),
         str(tmp_path / 'missing.pth'), str(tmp_path / 'out')],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('error:'), r.stderr
