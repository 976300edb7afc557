"""Diffusers teacher adapters: time mapping, outputs against the raw
diffusers networks, guidance embeddings, CFG sampling against diffusers'
own DDIM scheduler, one-line errors."""
import copy
import os

import pytest
import torch

import mmdistill  # noqa: F401
from mmdistill.models.adapters import (DiffusersDiT, DiffusersTextUNet,
                                       DiffusersUNet2D)
from mmdistill.models.adapters.networks import guidance_features
from _tiny_diffusers import (make_tiny_dit, make_tiny_sd, make_tiny_unet2d)
from mmdistill.registry import MODELS
from mmdistill.utils import UserError


@pytest.fixture(scope='session')
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('diffusers_tiny')
    return dict(unet2d=make_tiny_unet2d(str(root / 'unet2d')),
                dit=make_tiny_dit(str(root / 'dit')),
                sd=make_tiny_sd(str(root / 'sd')))


def _perturb(module, std=0.05, seed=1):
    """Random values everywhere: zero-initialised output layers of fresh
    diffusers models would make comparisons trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def _grid_t(b, k=1000):
    idx = torch.tensor([999, 500, 17, 0])[:b]
    return (idx + 1).float() / k, idx


def test_schedule_matches_diffusers_alphas_cumprod(tiny_folders):
    from diffusers import DDIMScheduler
    for fam in ('unet2d', 'sd'):
        net = DiffusersUNet2D(tiny_folders[fam]) if fam == 'unet2d' else \
            DiffusersTextUNet(tiny_folders[fam])
        ref = DDIMScheduler.from_pretrained(tiny_folders[fam],
                                            subfolder='scheduler')
        t, idx = _grid_t(4)
        alpha, sigma = net.schedule.alpha_sigma(t)
        ab = ref.alphas_cumprod[idx].float()
        torch.testing.assert_close(alpha**2, ab, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(sigma**2, 1 - ab, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(net.timestep(t), idx.float())
        assert net.prediction_type == 'eps'


def test_prediction_type_from_scheduler_config(tmp_path):
    make_tiny_unet2d(str(tmp_path), prediction_type='v_prediction')
    assert DiffusersUNet2D(str(tmp_path)).prediction_type == 'v'
    net = DiffusersUNet2D(str(tmp_path), scheduler=dict(
        prediction_type='sample'))
    assert net.prediction_type == 'x'


def test_unet2d_matches_raw_model(tiny_folders):
    from diffusers import UNet2DModel
    net = _perturb(DiffusersUNet2D(tiny_folders['unet2d'])).eval()
    raw = copy.deepcopy(net.model)
    assert isinstance(raw, UNet2DModel) and net.num_classes == 10
    z = torch.randn(4, 1, 8, 8)
    t, idx = _grid_t(4)
    y = torch.tensor([0, 3, 10, 9])
    ref = raw(z, idx, class_labels=y).sample
    torch.testing.assert_close(net(z, t, y), ref)


def test_unconditional_unet2d(tmp_path):
    make_tiny_unet2d(str(tmp_path), num_classes=0)
    net = _perturb(DiffusersUNet2D(str(tmp_path))).eval()
    assert net.num_classes == 0
    z, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    torch.testing.assert_close(net(z, t, torch.tensor([0, 5])),
                               net(z, t, None))


def test_dit_first_channels_null_class_no_label_dropout(tiny_folders):
    net = _perturb(DiffusersDiT(tiny_folders['dit']))
    assert net.num_classes == 10 and net.in_channels == 4
    raw = copy.deepcopy(net.model).eval()
    z = torch.randn(4, 4, 4, 4)
    t, idx = _grid_t(4)
    y = torch.tensor([1, 10, 10, 2])  # 10 = null
    ref = raw(z, timestep=idx.float(), class_labels=y).sample
    assert ref.shape[1] == 8  # eps and learned variance
    net.train()  # diffusers would drop labels at random in train mode
    out1, out2 = net(z, t, y), net(z, t, y)
    torch.testing.assert_close(out1, ref[:, :4])
    torch.testing.assert_close(out1, out2)


def test_text_unet_matches_raw_model(tiny_folders):
    from mmdistill.models.adapters.preprocessor import TextEncoderWrapper
    net = _perturb(DiffusersTextUNet(tiny_folders['sd'])).eval()
    te = TextEncoderWrapper.from_pretrained(tiny_folders['sd'])
    emb = te(['a red square', '', 'two dots', 'x'])
    assert emb.shape == (4, 16, 32)
    z = torch.randn(4, 4, 8, 8)
    t, idx = _grid_t(4)
    ref = copy.deepcopy(net.model)(z, idx, encoder_hidden_states=emb).sample
    torch.testing.assert_close(net(z, t, emb), ref)


@pytest.mark.parametrize('family', ['unet2d', 'dit'])
def test_hooked_guidance_embedding_zero_init_then_used(tiny_folders, family):
    cls = DiffusersUNet2D if family == 'unet2d' else DiffusersDiT
    c = 1 if family == 'unet2d' else 4
    s = 8 if family == 'unet2d' else 4
    teacher = _perturb(cls(tiny_folders[family])).eval()
    student = copy.deepcopy(teacher).enable_guidance_embedding()
    z, t = torch.randn(3, c, s, s), torch.rand(3)
    y, w = torch.tensor([1, 2, 3]), torch.tensor([0.0, 1.5, 4.0])
    with torch.no_grad():
        torch.testing.assert_close(student(z, t, y, w), teacher(z, t, y))
        _perturb(student.guidance_emb, std=0.5, seed=3)
        out = student(z, t, y, w)
        assert not torch.allclose(out, teacher(z, t, y), atol=1e-4)
        # the teacher is untouched and a copy of the student keeps its hooks
        copied = copy.deepcopy(student)
        torch.testing.assert_close(copied(z, t, y, w), out)
        _perturb(copied.guidance_emb, std=0.5, seed=4)
        torch.testing.assert_close(student(z, t, y, w), out)
    assert len(student.model.transformer_blocks[0].norm1.emb._forward_hooks
               if family == 'dit' else
               student.model.time_embedding._forward_hooks) == 1


def test_hooked_guidance_with_gradient_checkpointing(tiny_folders):
    student = DiffusersDiT(tiny_folders['dit'], gradient_checkpointing=True,
                           guidance_embed=True)
    _perturb(student.guidance_emb, std=0.5)
    ref = copy.deepcopy(student)
    ref.model.disable_gradient_checkpointing()
    z, t = torch.randn(2, 4, 4, 4), torch.rand(2)
    y, w = torch.tensor([1, 2]), torch.tensor([0.5, 3.0])
    for m in (student, ref):
        m.train()
        m(z, t, y, w).square().sum().backward()
    g1 = student.guidance_emb.proj.weight.grad
    g2 = ref.guidance_emb.proj.weight.grad
    assert g1.abs().sum() > 0
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)


def test_text_guidance_native_time_cond_proj(tiny_folders):
    from diffusers import LatentConsistencyModelPipeline
    teacher = _perturb(DiffusersTextUNet(tiny_folders['sd'])).eval()
    student = copy.deepcopy(teacher).enable_guidance_embedding()
    assert student.model.config.time_cond_proj_dim == 256
    assert teacher.model.config.time_cond_proj_dim is None
    cp = student.model.time_embedding.cond_proj
    assert cp.bias is None and cp.weight.abs().sum() == 0
    z, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    y, w = torch.randn(2, 16, 32), torch.tensor([1.0, 6.0])
    with torch.no_grad():
        torch.testing.assert_close(student(z, t, y, w), teacher(z, t, y))
        _perturb(cp, std=0.5)
        assert not torch.allclose(student(z, t, y, w), teacher(z, t, y),
                                  atol=1e-4)
    # the w features are diffusers' LCM guidance embedding of w
    ref = LatentConsistencyModelPipeline.get_guidance_scale_embedding(
        None, w, embedding_dim=256)
    torch.testing.assert_close(guidance_features(w, 256), ref)


def _diffusers_cfg_ddim(model_fn, z, steps, scale, folder):
    """Reference: diffusers' DDIMScheduler (trailing spacing, final alpha
    1) with CFG on eps, guidance_scale = 1 + w."""
    from diffusers import DDIMScheduler
    sch = DDIMScheduler.from_pretrained(folder, subfolder='scheduler',
                                        timestep_spacing='trailing',
                                        set_alpha_to_one=True,
                                        clip_sample=False)
    sch.set_timesteps(steps)
    for ts in sch.timesteps:
        eps_c, eps_u = model_fn(z, ts).chunk(2)
        eps = eps_u + scale * (eps_c - eps_u)
        z = sch.step(eps, ts, z).prev_sample
    return z


@pytest.mark.parametrize('steps', [1, 4])
def test_cfg_teacher_sampling_matches_diffusers_ddim(tiny_folders, steps):
    folder = tiny_folders['unet2d']
    teacher = MODELS.build(dict(
        type='DiffusersCFGDiffusion',
        denoiser=dict(type='DiffusersUNet2D', pretrained=folder)))
    _perturb(teacher.net)
    assert teacher.image_shape == (1, 8, 8) and teacher.num_classes == 10
    y = torch.tensor([0, 7, 3])
    noise = torch.randn(3, 1, 8, 8)
    w = 2.0
    out = teacher.sample(y, noise=noise, steps=steps, guidance=w)
    raw = teacher.net.model
    null = torch.full_like(y, 10)

    def model_fn(z, ts):
        return raw(torch.cat([z, z]), ts, class_labels=torch.cat(
            [y, null])).sample

    with torch.no_grad():
        ref = _diffusers_cfg_ddim(model_fn, noise, steps, 1 + w, folder)
    # t = 0 has log-SNR 20 (sigma 4.5e-5) where diffusers has alpha = 1
    torch.testing.assert_close(out, ref.clamp(-1, 1), atol=2e-3, rtol=0)


def test_latent_dit_teacher_sampling_matches_diffusers(tiny_folders):
    folder = tiny_folders['dit']
    teacher = MODELS.build(dict(
        type='DiffusersCFGDiffusion',
        denoiser=dict(type='DiffusersDiT', pretrained=folder),
        data_preprocessor=dict(type='LatentDataPreprocessor', vae=folder)))
    _perturb(teacher.net)
    assert teacher.image_shape == (4, 4, 4)
    y, noise = torch.tensor([1, 4]), torch.randn(2, 4, 4, 4)
    out = teacher.sample(y, noise=noise, steps=4, guidance=3.0)
    assert out.shape == (2, 3, 8, 8)
    raw, vae = teacher.net.model, teacher.data_preprocessor.vae.vae

    def model_fn(z, ts):
        return raw(torch.cat([z, z]), timestep=ts.expand(4).float(),
                   class_labels=torch.cat([y, torch.full_like(y, 10)])
                   ).sample[:, :4]

    with torch.no_grad():
        z0 = _diffusers_cfg_ddim(model_fn, noise, 4, 4.0, folder)
        ref = vae.decode(z0 / vae.config.scaling_factor).sample.clamp(-1, 1)
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=0)


def test_missing_folder_and_component_errors(tmp_path, tiny_folders):
    with pytest.raises(UserError, match='folder not found'):
        DiffusersUNet2D(str(tmp_path / 'nope'))
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(UserError, match='transformer/config.json'):
        DiffusersDiT(str(tmp_path / 'empty'))
    with pytest.raises(UserError, match='text_encoder'):
        MODELS.build(dict(type='LatentDataPreprocessor',
                          vae=tiny_folders['dit'],
                          text_encoder=tiny_folders['dit']))
    for e in (UserError('x'), ):
        assert '\n' not in str(e)
