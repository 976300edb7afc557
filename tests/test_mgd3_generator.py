"""The MGD3 generator samples through the distillation teacher: the same
CFGDiffusion / adapter / VAEWrapper, identical x_hat, the VAE shift factor
in encode / decode, integer DiT timesteps on the sampling grid."""
import json
import os

import pytest
import torch
from mmengine.config import Config

from _tiny_diffusers import make_tiny_dit
from mmdistill.registry import MODELS, SYNTHESIS
from mmdistill.synthesis.generators import (CFGModelGenerator,
                                            DiTLatentGenerator,
                                            PixelTeacherGenerator)
from mmdistill.utils import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER_CFG = os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py')
DISTILL_CFG = os.path.join(ROOT, 'configs/guided_distill/'
                           'guided_distill_digits.py')
SCALE, SHIFT = 0.5, 0.3  # the VAE's scaling_factor s and shift_factor b


@pytest.fixture(scope='module')
def dit_folder(tmp_path_factory):
    """A tiny DiT pipeline folder whose VAE has a non-zero shift factor."""
    path = str(tmp_path_factory.mktemp('dit_shift'))
    make_tiny_dit(path, num_classes=10, image_size=8)
    cfg_file = os.path.join(path, 'vae', 'config.json')
    with open(cfg_file) as f:
        cfg = json.load(f)
    cfg.update(scaling_factor=SCALE, shift_factor=SHIFT)
    with open(cfg_file, 'w') as f:
        json.dump(cfg, f)
    return path


def _distill_config(tmp_path, folder):
    """A stage-1 config of the latent DiT (as configs/_base_/models/
    dit_xl2_256.py) written to a file."""
    pre = dict(type='LatentDataPreprocessor', vae=folder)
    teacher = dict(type='DiffusersCFGDiffusion',
                   denoiser=dict(type='DiffusersDiT', pretrained=folder),
                   data_preprocessor=pre)
    path = str(tmp_path / 'distill_dit.py')
    Config(dict(model=dict(type='GuidanceDistiller', teacher=teacher,
                           teacher_ckpt=None, data_preprocessor=pre))
           ).dump(path)
    return path


def _inputs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, 4, 4, generator=g)
    # grid times of 50 steps and continuous ones (as in student training)
    t = torch.cat([torch.linspace(1, 0, 51, dtype=torch.float64)[[0, 13, 49]]
                   .float(), torch.rand(n - 3, generator=g)])
    return z, t


def test_generator_equals_distillation_teacher(tmp_path, dit_folder):
    cfg_path = _distill_config(tmp_path, dit_folder)
    distiller = MODELS.build(Config.fromfile(cfg_path).model.to_dict())
    teacher = distiller.teacher
    class_labels = [3, 1, 4, 7, 0, 9]
    gens = [CFGModelGenerator(cfg_path, device='cpu',
                              class_labels=class_labels),
            DiTLatentGenerator(os.path.join(dit_folder, 'transformer'),
                               dit_folder, device='cpu',
                               class_labels=class_labels),
            SYNTHESIS.build(dict(type='CFGModelGenerator', model=cfg_path,
                                 device='cpu', class_labels=class_labels))]
    z, t = _inputs()
    data_labels = torch.tensor([0, 1, 2, 3, 4, 5])
    y = torch.tensor(class_labels)[data_labels]
    for w in (0.0, 3.0):
        wt = torch.full((len(y), ), w)
        with torch.no_grad():
            ref = teacher.guided_x_fn(y, wt, net=teacher.net)(z, t)
            assert torch.equal(distiller.teacher_target(z, t, y, wt), ref)
            for gen in gens:
                assert torch.equal(gen.x_fn(data_labels, w)(z, t), ref)
    gen = gens[0]
    assert gen.schedule is not None and gen.sample_shape == (4, 4, 4)
    assert gen.num_classes == 10 == teacher.num_classes
    img = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)
                     ) * 2 - 1
    for g in gens:
        assert torch.equal(g.encode(img), distiller.data_preprocessor.encode(
            img))
        zz = g.encode(img)
        assert torch.equal(g.decode(zz), teacher.data_preprocessor.decode(zz))


def test_encode_decode_use_the_shift_factor(dit_folder):
    from diffusers import AutoencoderKL
    gen = DiTLatentGenerator(os.path.join(dit_folder, 'transformer'),
                             dit_folder, device='cpu', vae_batch_size=2)
    raw = AutoencoderKL.from_pretrained(os.path.join(dit_folder, 'vae'))
    assert (raw.config.scaling_factor, raw.config.shift_factor) == (SCALE,
                                                                    SHIFT)
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2)
                   ) * 2 - 1
    with torch.no_grad():
        mean = raw.encode(x).latent_dist.mean
        z = gen.encode(x)
        # z = s * (mean - b)
        torch.testing.assert_close(z, SCALE * (mean - SHIFT))
        assert not torch.allclose(z, SCALE * mean, atol=1e-2)
        # x = D(z / s + b), clamped to [-1, 1]
        ref = raw.decode(z / SCALE + SHIFT).sample.clamp(-1, 1)
        torch.testing.assert_close(gen.decode(z), ref)
        assert not torch.allclose(
            gen.decode(z), raw.decode(z / SCALE).sample.clamp(-1, 1),
            atol=1e-3)


def test_dit_timesteps_are_integers_on_the_sampling_grid(dit_folder):
    gen = DiTLatentGenerator(dit_folder, dit_folder, device='cpu')
    net = gen.model.net
    k = net.schedule.num_train_timesteps
    for steps in (4, 25, 50, 100, 200):
        t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)[:-1].float()
        idx = torch.arange(steps, 0, -1) * (k // steps) - 1
        assert torch.equal(net.timestep(t), idx.float())
    # off the grid the timestep is continuous (not rounded)
    assert float(net.timestep(torch.tensor([0.4995]))) == pytest.approx(
        498.5)


def test_pixel_generator_equals_distillation_teacher(teacher_ckpt):
    cfg = Config.fromfile(DISTILL_CFG)
    distiller = MODELS.build(dict(cfg.model.to_dict(),
                                  teacher_ckpt=teacher_ckpt))
    teacher = distiller.teacher
    gens = [PixelTeacherGenerator(TEACHER_CFG, teacher_ckpt, device='cpu'),
            CFGModelGenerator(TEACHER_CFG, teacher_ckpt, device='cpu'),
            CFGModelGenerator(DISTILL_CFG, teacher_ckpt, device='cpu')]
    g = torch.Generator().manual_seed(3)
    z, t = torch.randn(4, 1, 8, 8, generator=g), torch.rand(4, generator=g)
    y = torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        ref = teacher.guided_x_fn(y, torch.full((4, ), 2.0),
                                  net=teacher.net)(z, t)
        for gen in gens:
            assert torch.equal(gen.x_fn(y, 2.0)(z, t), ref)
    img = torch.rand(2, 1, 8, 8, generator=g) * 3 - 1.5
    assert torch.equal(gens[0].encode(img), img)
    assert torch.equal(gens[0].decode(img), img.clamp(-1, 1))


def test_generator_errors(tmp_path, teacher_ckpt):
    with pytest.raises(UserError, match='no checkpoint'):
        CFGModelGenerator(TEACHER_CFG, device='cpu')
    with pytest.raises(UserError, match="sample_model must be 'ema'"):
        CFGModelGenerator(TEACHER_CFG, teacher_ckpt, sample_model='x')
    with pytest.raises(UserError, match='does not match the model'):
        CFGModelGenerator(TEACHER_CFG, teacher_ckpt, device='cpu',
                          num_classes=7)
    with pytest.raises(UserError, match=r'class_labels must be in \[0, 10\)'):
        CFGModelGenerator(TEACHER_CFG, teacher_ckpt, device='cpu',
                          class_labels=[0, 10])
    empty = tmp_path / 'empty.py'
    empty.write_text('seed = 0\n')
    with pytest.raises(UserError, match='defines no model'):
        CFGModelGenerator(str(empty), teacher_ckpt)
