"""The shipped latent DiT of digits (``checkpoints/dit-digits``, the DiT-XL-2
folder layout at digits scale): it loads as the folder alone, it is a trained
model (its samples are digits of the asked class), stage 1 trains on it, and
MGD3 synthesises from it deterministically."""
import json
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, 'checkpoints', 'dit-digits')
STAGE1 = os.path.join(ROOT, 'configs', 'guided_distill',
                      'guided_distill_dit_digits_v.py')


def _registered():
    from mmdistill import register_all_modules
    register_all_modules(init_default_scope=False)


def _teacher():
    _registered()
    from projects.digits.report import load_ddpm_teacher
    return load_ddpm_teacher(FOLDER).eval()


def test_folder_is_the_dit_layout():
    with open(os.path.join(FOLDER, 'model_index.json')) as f:
        index = json.load(f)
    assert index['_class_name'] == 'DiTPipeline'
    assert index['transformer'] == ['diffusers', 'DiTTransformer2DModel']
    assert index['vae'] == ['diffusers', 'AutoencoderKL']
    with open(os.path.join(FOLDER, 'transformer', 'config.json')) as f:
        cfg = json.load(f)
    # eps + learned variance, as DiT ships: 2 x the latent channels
    assert cfg['out_channels'] == 2 * cfg['in_channels'] == 8
    assert cfg['num_embeds_ada_norm'] == 10
    with open(os.path.join(FOLDER, 'scheduler',
                           'scheduler_config.json')) as f:
        sched = json.load(f)
    assert (sched['beta_schedule'], sched['beta_start'], sched['beta_end'],
            sched['num_train_timesteps'], sched['prediction_type']) == (
                'linear', 1e-4, 0.02, 1000, 'epsilon')
    assert sched['clip_sample'] is False  # latents are not in [-1, 1]


def test_diffusers_loads_the_folder_alone():
    from diffusers import DiTPipeline
    pipe = DiTPipeline.from_pretrained(FOLDER, local_files_only=True)
    assert pipe.transformer.config.sample_size == 4
    assert pipe.vae.config.sample_size == 16


def test_new_dit_starts_as_dit_does():
    """adaLN-Zero: a DiT built from model_config outputs exactly 0 and every
    block is the identity (its gates are 0)."""
    _registered()
    from mmdistill.registry import MODELS
    cfg = dict(sample_size=4, patch_size=1, in_channels=4, out_channels=8,
               num_layers=2, num_attention_heads=2, attention_head_dim=8,
               num_embeds_ada_norm=10)
    net = MODELS.build(dict(type='DiffusersDiT', model_config=cfg))
    z = torch.randn(3, 4, 4, 4)
    out = net(z, torch.rand(3), torch.tensor([0, 5, 10]))
    assert out.shape == (3, 4, 4, 4) and out.abs().max() == 0
    for block in net.model.transformer_blocks:
        assert block.norm1.linear.weight.abs().max() == 0


@torch.no_grad()
def test_teacher_samples_are_digits_of_the_class():
    """A trained model, not plumbing: 16-step CFG-DDIM samples (w = 2),
    decoded, brought to 8x8 and read by the digits classifier, have the
    asked label (a random DiT scores ~10 %)."""
    from mmdistill.evaluation import build_extractor
    from projects.digits.vae import downsample_exact
    teacher = _teacher()
    labels = torch.arange(10).repeat(10)
    torch.manual_seed(0)
    x = teacher.sample(labels, steps=16, guidance=2.0, sampler='ddim')
    assert x.shape == (100, 1, 16, 16)
    probs = build_extractor('classifier').extract(
        downsample_exact(x), probs=True)['probs']
    acc = float((probs.argmax(1) == labels).float().mean())
    assert acc >= 0.9, acc


def test_two_stage1_iterations_from_the_folder(tmp_path):
    """Stage 1 on the folder alone: the v student starts as the teacher
    (same x_hat), two iterations change it and give finite losses."""
    _registered()
    from mmengine.config import Config

    from mmdistill.engine import DistillRunner
    cfg = Config.fromfile(STAGE1)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.train_dataloader.batch_size = 8
    cfg.default_hooks.logger.interval = 1
    runner = DistillRunner.from_cfg(cfg)
    model = runner.model
    z, t = torch.randn(4, 4, 4, 4), torch.tensor([0.2, 0.5, 0.8, 1.0])
    y, w = torch.tensor([1, 3, 5, 7]), torch.zeros(4)
    with torch.no_grad():
        before = model.x_hat(model.net, z, t, y, w)
        teacher = model.teacher.x_hat(model.teacher.net, z, t, y, None)
    torch.testing.assert_close(before, teacher, rtol=1e-5, atol=1e-5)
    runner.train()
    with torch.no_grad():
        after = model.x_hat(model.net, z, t, y, w)
    assert not torch.allclose(after, before)
    assert all(torch.isfinite(p).all() for p in model.net.parameters())


@torch.no_grad()
def test_two_image_mgd3_synthesis_is_deterministic():
    """Modes = k-means centres of the VAE latent means (x scaling, after the
    shift); two mode-guided 50-step DDPM samples decode to 16x16 images in
    [-1, 1]; the same seeds give the same images, other seeds others."""
    _registered()
    from mmdistill.datasets import DigitsDataset
    from mmdistill.synthesis import DiTLatentGenerator, KMeansModes
    from mmdistill.synthesis.guidance import mode_guided_sample
    gen = DiTLatentGenerator(FOLDER, FOLDER, device='cpu')
    assert gen.latent and gen.sample_shape == (4, 4, 4)
    real = DigitsDataset('train', image_size=16)
    idx = [i for i in range(len(real)) if int(real.labels[i]) == 3][:40]
    z0 = gen.encode(torch.stack([real[i]['inputs'] for i in idx]))
    vae = gen.model.data_preprocessor.vae.vae
    mean = vae.encode(torch.stack([real[i]['inputs'] for i in idx])
                      ).latent_dist.mean
    torch.testing.assert_close(
        z0, vae.config.scaling_factor * (mean - vae.config.shift_factor),
        rtol=1e-5, atol=1e-5)
    modes = KMeansModes(seed=0).fit_class(z0, 2, 'class 3').modes
    labels = torch.tensor([3, 3])

    def draw(seed):
        g = [torch.Generator().manual_seed(seed + k) for k in range(2)]
        noise = torch.stack([torch.randn(4, 4, 4, generator=gi) for gi in g])
        x0 = mode_guided_sample(gen.x_fn(labels, 2.0), noise, gen.schedule,
                                50, modes=modes, lam=0.1, t_stop=25,
                                sampler='ddpm', generator=g)
        return gen.decode(x0)

    a, b, c = draw(0), draw(0), draw(10)
    assert a.shape == (2, 1, 16, 16)
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize('missing', ['transformer/config.json',
                                     'scheduler/scheduler_config.json'])
def test_incomplete_dit_folder_is_a_one_line_error(tmp_path, missing):
    import shutil

    from mmdistill.utils import UserError
    dst = tmp_path / 'dit'
    shutil.copytree(FOLDER, dst)
    os.unlink(dst / missing)
    _registered()
    from projects.digits.report import load_ddpm_teacher
    with pytest.raises(UserError) as e:
        load_ddpm_teacher(str(dst))
    assert '\n' not in str(e.value)


def test_dit_folder_round_trip(tmp_path):
    """tools/export.py --layout dit of the teacher read from the folder
    writes the same transformer and VAE weights, and diffusers' DiTPipeline
    loads the result."""
    from diffusers import DiTPipeline
    from safetensors.torch import load_file

    from mmdistill.models.adapters.export import export_teacher_folder
    out = export_teacher_folder(_teacher(), str(tmp_path / 'again'),
                                layout='dit')
    for sub in ('transformer', 'vae'):
        name = 'diffusion_pytorch_model.safetensors'
        a = load_file(os.path.join(FOLDER, sub, name))
        b = load_file(os.path.join(out, sub, name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    DiTPipeline.from_pretrained(out, local_files_only=True)


def test_dit_layout_of_a_pixel_teacher_is_refused(tmp_path):
    from mmdistill.models.adapters.export import export_teacher_folder
    from mmdistill.utils import UserError
    _registered()
    from projects.digits.report import load_ddpm_teacher
    pixel = load_ddpm_teacher(os.path.join(ROOT, 'checkpoints',
                                           'ddpm-unet2d-digits'))
    with pytest.raises(UserError, match='--layout dit writes a diffusers '
                       'DiTTransformer2DModel teacher; .* DiffusersUNet2D'):
        export_teacher_folder(pixel, str(tmp_path / 'x'), layout='dit')
    assert not (tmp_path / 'x').exists()


STUDENT_CFG = os.path.join(ROOT, 'configs', 'progressive',
                           'progressive_dit_digits_v_32to1.py')


@torch.no_grad()
def test_distilled_student_as_mgd3_generator():
    """The shipped 4-step v student as MGD3 generator: one network call
    per step, x_fn is the student's own x_hat at w, its 4-step samples are
    digits of the asked class, and mode-guided sampling on its grid is
    deterministic for the seeds."""
    _registered()
    from mmdistill.evaluation import build_extractor
    from mmdistill.synthesis import DistilledStudentGenerator
    from mmdistill.synthesis.guidance import mode_guided_sample
    from projects.digits.vae import downsample_exact
    gen = DistilledStudentGenerator(
        os.path.join(ROOT, 'checkpoints', 'dit_digits_student_4step.pth'),
        STUDENT_CFG, device='cpu')
    assert gen.num_steps == 4 and gen.latent
    assert gen.model.prediction_type == 'v'
    labels = torch.arange(10).repeat(10)
    z = torch.randn((100, ) + gen.sample_shape,
                    generator=torch.Generator().manual_seed(0))
    t = torch.full((100, ), 0.75)
    w = torch.full((100, ), 1.0)
    net = gen.model.net
    a, s = gen.schedule.alpha_sigma(t)
    v = net(z, t, labels, w)
    expect = a.view(-1, 1, 1, 1) * z - s.view(-1, 1, 1, 1) * v  # x = a z - s v
    torch.testing.assert_close(gen.x_fn(labels, 1.0)(z, t), expect,
                               rtol=1e-5, atol=1e-5)
    x0 = mode_guided_sample(gen.x_fn(labels, 1.0), z, gen.schedule, 4,
                            sampler='ddim', lam=0.0, t_stop=2)
    images = gen.decode(x0)
    probs = build_extractor('classifier').extract(
        downsample_exact(images), probs=True)['probs']
    assert float((probs.argmax(1) == labels).float().mean()) >= 0.9
    modes = torch.randn(2, *gen.sample_shape,
                        generator=torch.Generator().manual_seed(1))
    runs = [mode_guided_sample(gen.x_fn(labels[:2], 1.0), z[:2],
                               gen.schedule, 4, modes=modes, lam=0.3,
                               t_stop=1, sampler='ddim') for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    plain = mode_guided_sample(gen.x_fn(labels[:2], 1.0), z[:2],
                               gen.schedule, 4, sampler='ddim', lam=0.0,
                               t_stop=1)
    assert not torch.allclose(runs[0], plain)  # the guidance acts


def test_student_generator_without_a_config_is_a_one_line_error(tmp_path):
    import shutil

    from mmdistill.synthesis import DistilledStudentGenerator
    from mmdistill.utils import UserError
    ckpt = tmp_path / 's.pth'
    shutil.copy(os.path.join(ROOT, 'checkpoints',
                             'dit_digits_student_1step.pth'), ckpt)
    with pytest.raises(UserError, match='cannot tell the config of .*'
                       'holds 0 config files; set generator.config'):
        DistilledStudentGenerator(str(ckpt))
