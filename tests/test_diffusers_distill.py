"""Each diffusers family end to end on tiny random models built in a
temporary folder: stage 1 and one stage-2 halving (the loss on a fixed
draw of t, w and noise goes down), sampling at 1 and 4 steps, export to a
diffusers folder, reload with the exported stand-alone pipeline and
compare with sampling inside mmdistill (same noise, same steps)."""
import json
import os

import pytest
import torch

import mmdistill  # noqa: F401
from mmdistill.models.adapters.export import export_student, load_pipeline
from mmdistill.utils import load_student_checkpoint
from _tiny_diffusers import (make_tiny_dit, make_tiny_sd, make_tiny_unet2d)
from mmdistill.registry import MODELS

# eps-predicting teachers: eps-MSE (x-space weights SNR, i.e. 'snr'); the
# x-space weightings put weight ~1/alpha^2 (~2.5e4 at t = 1 of the DDPM
# schedule) on eps errors
EPS_LOSS = dict(type='GuidedOutputL2Loss', weighting='snr')
CAPTIONS = ['a red square', 'two blue dots', 'a green line', 'nothing']


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('distill_tiny')
    return dict(unet2d=make_tiny_unet2d(str(root / 'unet2d')),
                dit=make_tiny_dit(str(root / 'dit')),
                sd=make_tiny_sd(str(root / 'sd')))


def _randomize_outputs(net, seed=0):
    """Fresh diffusers models have zero output layers: give them random
    weights so the teacher's cond and uncond branches differ."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def family_setup(family, folder):
    """(teacher cfg, student denoiser cfg, preprocessor cfg, batch)."""
    g = torch.Generator().manual_seed(0)
    if family == 'unet2d':
        den = dict(type='DiffusersUNet2D', pretrained=folder)
        pre = dict(type='DiffusionDataPreprocessor')
        batch = dict(inputs=torch.rand(8, 1, 8, 8, generator=g) * 2 - 1,
                     data_samples=torch.arange(8) % 10)
        cond = torch.tensor([3, 10])
    elif family == 'dit':
        den = dict(type='DiffusersDiT', pretrained=folder)
        pre = dict(type='LatentDataPreprocessor', vae=folder)
        batch = dict(inputs=torch.rand(8, 3, 8, 8, generator=g) * 2 - 1,
                     data_samples=torch.arange(8) % 10)
        cond = torch.tensor([3, 10])
    else:
        den = dict(type='DiffusersTextUNet', pretrained=folder)
        pre = dict(type='LatentDataPreprocessor', vae=folder,
                   text_encoder=folder)
        batch = dict(inputs=torch.rand(4, 3, 16, 16, generator=g) * 2 - 1,
                     data_samples=list(CAPTIONS))
        cond = ['a red square', '']
    teacher = dict(type='TextCFGDiffusion' if family == 'sd' else
                   'DiffusersCFGDiffusion', denoiser=den,
                   data_preprocessor=pre)
    return teacher, den, pre, batch, cond


def fixed_draw_loss(model, data, seeds=(11, 12, 13, 14)):
    """The loss averaged over fixed draws of t, w and noise."""
    state = torch.get_rng_state()
    total = 0.0
    with torch.no_grad():
        for seed in seeds:
            torch.manual_seed(seed)
            total += float(model.loss(data['inputs'],
                                      data['data_samples'])['loss'])
    torch.set_rng_state(state)
    return total / len(seeds)


def train(model, data, iters, lr):
    opt = torch.optim.Adam([p for p in model.parameters()
                            if p.requires_grad], lr=lr)
    for _ in range(iters):
        loss = model.loss(data['inputs'], data['data_samples'])['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize('family', ['unet2d', 'dit', 'sd'])
def test_family_stage1_stage2_export_reload(family, folders, tmp_path):
    torch.manual_seed(0)
    folder = folders[family]
    teacher, den, pre, batch, cond = family_setup(family, folder)
    # -- stage 1 ----------------------------------------------------------
    s1 = MODELS.build(dict(type='GuidanceDistiller', teacher=teacher,
                           w_min=0.0, w_max=4.0, ema=None, loss=EPS_LOSS,
                           data_preprocessor=pre))
    _randomize_outputs(s1.teacher.net)
    s1.net.load_state_dict(s1.teacher.net.state_dict(), strict=False)
    data = s1.data_preprocessor(batch, True)
    # the fresh student is the conditional teacher (w ignored)
    z, t = torch.randn_like(data['inputs']), torch.rand(len(data['inputs']))
    w = torch.full_like(t, 3.0)
    with torch.no_grad():
        torch.testing.assert_close(
            s1.net(z, t, data['data_samples'], w),
            s1.teacher.net(z, t, data['data_samples']))
    before = fixed_draw_loss(s1, data)
    train(s1, data, 12, 3e-4 if family == 'sd' else 1e-3)
    after = fixed_draw_loss(s1, data)
    assert after < 0.9 * before, (before, after)
    # the stage-1 student exports too (default steps from default_sample)
    out1 = str(tmp_path / 'export1')
    assert export_student(s1, out1)['num_inference_steps'] == \
        s1.default_sample['steps']
    noise = torch.randn((2, ) + tuple(s1.image_shape))
    torch.testing.assert_close(
        load_pipeline(out1)(cond, num_inference_steps=2, guidance=1.0,
                            noise=noise),
        s1.sample(cond, noise=noise, steps=2, guidance=1.0),
        atol=1e-4, rtol=1e-4)  # float32, thread-count-dependent sums
    ckpt1 = str(tmp_path / 'stage1.pth')
    torch.save({'state_dict': s1.state_dict()}, ckpt1)
    # -- stage 2: one halving, 4 -> 2 steps --------------------------------
    s2 = MODELS.build(dict(
        type='ProgressiveDistiller', student=dict(den, guidance_embed=True),
        teacher_ckpt=ckpt1, num_classes=s1.num_classes,
        image_shape=s1.image_shape, num_steps=2, schedule=s1.schedule,
        prediction_type=s1.prediction_type, loss=EPS_LOSS,
        data_preprocessor=pre))
    torch.testing.assert_close(
        s2.net.state_dict(), {k[4:]: v for k, v in s1.state_dict().items()
                              if k.startswith('net.')})
    before = fixed_draw_loss(s2, data)
    train(s2, data, 12, 2e-4)
    after = fixed_draw_loss(s2, data)
    assert after < before, (before, after)
    # -- sample, export, reload, match ------------------------------------
    out_dir = str(tmp_path / 'export')
    cfg = export_student(s2, out_dir, num_steps=2, guidance=2.0)
    src = open(os.path.join(out_dir, 'pipeline_mmdistill.py')).read()
    assert 'mmdistill' not in [ln.split()[1].split('.')[0] for ln in
                               src.splitlines()
                               if ln.startswith(('import ', 'from '))]
    with open(os.path.join(out_dir, 'mmdistill_pipeline.json')) as f:
        assert json.load(f)['prediction_type'] == s1.prediction_type
    pipe = load_pipeline(out_dir)
    shape = (2, ) + tuple(s2.image_shape)
    for steps in (1, 4):
        noise = torch.randn(shape)
        ours = s2.sample(cond, noise=noise, steps=steps, guidance=2.0)
        theirs = pipe(cond, num_inference_steps=steps, guidance=2.0,
                      noise=noise)
        assert ours.shape == theirs.shape and ours.shape[1] in (1, 3)
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
    assert cfg['num_inference_steps'] == 2
    # a checkpoint loads back into a freshly built model the same way
    ckpt2 = str(tmp_path / 'stage2.pth')
    torch.save({'state_dict': s2.state_dict()}, ckpt2)
    s2b = MODELS.build(dict(
        type='ProgressiveDistiller', student=dict(den, guidance_embed=True),
        num_classes=s1.num_classes, image_shape=s1.image_shape, num_steps=8,
        schedule=s1.schedule, prediction_type=s1.prediction_type,
        data_preprocessor=pre))
    load_student_checkpoint(s2b, ckpt2)
    assert int(s2b.num_steps) == 2
    noise = torch.randn(shape)
    torch.testing.assert_close(
        s2b.sample(cond, noise=noise, steps=1, guidance=1.0),
        s2.sample(cond, noise=noise, steps=1, guidance=1.0))
