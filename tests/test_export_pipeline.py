"""Exported students load with diffusers alone:
``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` in a
process where mmdistill cannot be imported gives the images mmdistill
samples (the shipped CompactUNet zoo students and a real-format v student
of the DDPM folder)."""
import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO_CFG = 'configs/progressive/progressive_digits_128to1.py'
LABELS = [0, 3, 7, 9, 10]  # 10: the null class

LOAD = r'''
import sys, torch
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == 'mmdistill' or name.startswith('mmdistill.'):
            raise ImportError('mmdistill is not importable here')
sys.meta_path.insert(0, Block())
from diffusers import DiffusionPipeline
folder, steps, w = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
ref = torch.load(folder + '/../ref.pt')
out = pipe(class_labels=ref['labels'], num_inference_steps=steps,
           guidance=w, noise=ref['noise'], output_type='pt').images
assert 'mmdistill' not in sys.modules
print(type(pipe).__name__, float((out - (ref['x'] + 1) / 2).abs().max()))
'''


def _round_trip(student, tmp_path, steps, w=2.0):
    """Export ``student``, sample it in mmdistill and through diffusers in a
    clean process; returns the max abs difference of the [0, 1] images."""
    from mmdistill.models.adapters.export import export_student
    out = tmp_path / 'folder'
    export_student(student, str(out), num_steps=steps)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn((len(LABELS), ) + tuple(student.image_shape),
                        generator=g)
    with torch.no_grad():
        x = student.sample(torch.tensor(LABELS), noise=noise, steps=steps,
                           guidance=w)
    torch.save(dict(labels=LABELS, noise=noise, x=x), tmp_path / 'ref.pt')
    index = json.loads((out / 'model_index.json').read_text())
    assert index['_class_name'] == ['pipeline_mmdistill',
                                    'MMDistillPipeline']
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / 'hf_modules'),
               PYTHONPATH='')
    r = subprocess.run([sys.executable, '-c', LOAD, str(out), str(steps),
                        str(w)], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    name, diff = r.stdout.split()[-2:]
    assert name == 'MMDistillPipeline'
    return float(diff), index


@pytest.mark.parametrize('steps', [1, 8])
def test_compact_unet_zoo_student_round_trip(tmp_path, steps):
    """The shipped CompactUNet v students (cosine schedule): unet/ is the
    network itself with its module file portable.py."""
    from mmdistill.apis import load_student
    st = load_student(f'checkpoints/digits_student_{steps}step.pth', ZOO_CFG)
    diff, index = _round_trip(st, tmp_path, steps)
    assert diff <= 1e-5
    assert index['unet'] == ['portable', 'CompactUNet']
    assert index['scheduler'] == [None, None]
    assert index['mmdistill']['prediction_type'] == 'v'


def test_real_format_v_student_round_trip(tmp_path):
    """A v student of the eps DDPM folder (stage 1, readout changed to v):
    plain UNet2DModel + the guidance embedding component, scheduler
    v_prediction."""
    from test_student_parameterisation import _stage1_v
    torch.manual_seed(0)
    st = _stage1_v(reparam_iters=0).eval()
    with torch.no_grad():  # a non-zero w-embedding, so w matters
        st.net_ema.guidance_emb.proj.weight.normal_(0, 0.05)
    diff, index = _round_trip(st, tmp_path, 4)
    assert diff <= 1e-5
    assert index['unet'] == ['diffusers', 'UNet2DModel']
    assert index['guidance_embedding'] == ['portable', 'GuidanceEmbedding']
    sched = json.loads((tmp_path / 'folder' / 'scheduler' /
                        'scheduler_config.json').read_text())
    assert sched['prediction_type'] == 'v_prediction'
