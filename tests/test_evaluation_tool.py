"""tools/test.py end to end on a tiny model."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.slow  # two tool start-ups, ~35 s on 2 shared cores
def test_tools_test_writes_json_and_markdown(tmp_path):
    import mmdistill  # noqa: F401
    from mmengine.config import Config

    from mmdistill.registry import MODELS
    base = osp.join(ROOT, 'configs', 'teacher', 'cfg_unet_digits_eval.py')
    cfg_path = tmp_path / 'tiny_eval.py'
    ckpt = osp.join(ROOT, 'checkpoints', 'digits_classifier.pth')
    cfg_path.write_text(
        f'_base_ = [{base!r}]\n'
        'model = dict(denoiser=dict(base_channels=8))\n'
        f'_ext = dict(type="classifier", checkpoint={ckpt!r})\n'
        'test_evaluator = dict(_delete_=True, type="Evaluator", metrics=[\n'
        '    dict(type="FID", fake_nums=30, extractor=_ext,\n'
        '         sweep=[dict(steps=2, guidance=0), dict(steps=2, '
        'guidance=2)]),\n'
        '    dict(type="SampleAccuracy", fake_nums=30, extractor=_ext,\n'
        '         sample_kwargs=dict(steps=2, guidance=2))])\n'
        'test_cfg = dict(batch_size=16)\n')
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'm.pth')
    work = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'), str(cfg_path),
         str(tmp_path / 'm.pth'), '--work-dir', str(work)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path),
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((work / 'test_results.json').read_text())['metrics']
    assert set(res) == {'FID-30/2step-w0', 'FID-30/2step-w2',
                        'Acc-30/2step-w2'}
    md = (work / 'test_results.md').read_text()
    assert '| FID-30/2step-w2 |' in md
    # a bad checkpoint is a one-line error with exit status 2
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'), str(cfg_path),
         str(tmp_path / 'bad.pth')], capture_output=True, text=True,
        env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith('error:')
    assert len(proc.stderr.strip().splitlines()) == 1
