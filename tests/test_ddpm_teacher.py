"""A diffusers UNet2DModel teacher trained in the project (``model_config``)
and written as a pretrained DDPM folder (``tools/export.py --layout ddpm``):
the folder is the one diffusers loads, and the teacher read back from it is
the trained one."""
import json
import os
import subprocess
import sys

import pytest
import torch

from _distill_helpers import randomize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_UNET = dict(sample_size=8, in_channels=1, out_channels=1,
                 block_out_channels=(8, 16), layers_per_block=1,
                 down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                 up_block_types=('AttnUpBlock2D', 'UpBlock2D'),
                 attention_head_dim=4, norm_num_groups=4, num_class_embeds=4)
SCHED = dict(num_train_timesteps=1000, beta_schedule='linear',
             beta_start=1e-4, beta_end=0.02, prediction_type='epsilon')


def _teacher(**denoiser):
    from mmdistill import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmdistill.registry import MODELS
    den = dict(type='DiffusersUNet2D', **denoiser) if denoiser else dict(
        type='DiffusersUNet2D', model_config=TINY_UNET, scheduler=SCHED)
    return MODELS.build(dict(type='DiffusersCFGDiffusion', denoiser=den,
                             ema=None)).eval()


def test_teacher_from_model_config():
    m = _teacher()
    assert m.prediction_type == 'eps' and m.num_classes == 3
    assert tuple(m.image_shape) == (1, 8, 8)
    # the DDPM linear schedule: alpha_bar at grid point k / K is the
    # product of (1 - beta_i), i < k
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    a, s = m.schedule.alpha_sigma(torch.tensor([1 / 1000, 0.5, 1.0]))
    torch.testing.assert_close(a.double() ** 2, abar[[0, 499, 999]],
                               rtol=1e-4, atol=1e-7)


def test_model_config_and_pretrained_together_is_refused(tmp_path):
    from mmdistill.utils import UserError
    with pytest.raises(UserError, match='either pretrained= .* or '
                       'model_config='):
        _teacher(pretrained=str(tmp_path), model_config=TINY_UNET)


def test_ddpm_folder_round_trip(tmp_path):
    from diffusers import DDPMPipeline

    from mmdistill.models.adapters.export import export_teacher_folder
    m = _teacher()
    randomize(m.net, std=0.05, seed=1)
    out = tmp_path / 'ddpm'
    export_teacher_folder(m, str(out))
    index = json.load(open(out / 'model_index.json'))
    assert index['_class_name'] == 'DDPMPipeline'
    assert index['unet'] == ['diffusers', 'UNet2DModel']
    assert index['scheduler'] == ['diffusers', 'DDPMScheduler']
    sc = json.load(open(out / 'scheduler' / 'scheduler_config.json'))
    assert sc['prediction_type'] == 'epsilon'
    assert (sc['beta_start'], sc['beta_end'], sc['beta_schedule']) == (
        1e-4, 0.02, 'linear')
    pipe = DDPMPipeline.from_pretrained(str(out))
    # the folder alone rebuilds the teacher: same outputs at every t
    back = _teacher(pretrained=str(out))
    z = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([1e-3, 0.3, 0.7, 1.0])
    y = torch.tensor([0, 1, 2, 3])  # 3: the null class
    with torch.no_grad():
        ref = m.net(z, t, y)
        torch.testing.assert_close(back.net(z, t, y), ref, rtol=0, atol=0)
        # and it is diffusers' own network at timestep t K - 1
        own = pipe.unet(z, t * 1000 - 1, class_labels=y).sample
    torch.testing.assert_close(own, ref, rtol=1e-6, atol=1e-6)


def test_export_cli_ddpm_layout(tmp_path):
    """tools/export.py --layout ddpm on a trained checkpoint of the shipped
    real-format teacher config (tiny width)."""
    from mmdistill.apis import init_model, load_config
    cfg_path = os.path.join(ROOT, 'configs/teacher/ddpm_unet2d_digits.py')
    opts = ['model.denoiser.model_config.block_out_channels=(8,16)',
            'model.denoiser.model_config.norm_num_groups=4',
            'model.denoiser.model_config.attention_head_dim=4']
    cfg = load_config(cfg_path, opts)
    m = init_model(cfg)
    randomize(m.net_ema, std=0.05, seed=2)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': m.state_dict()}, ckpt)
    out = tmp_path / 'folder'
    r = subprocess.run([sys.executable, 'tools/export.py', cfg_path,
                        str(ckpt), str(out), '--layout', 'ddpm',
                        '--cfg-options', *opts], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    back = _teacher(pretrained=str(out))
    z = torch.randn(2, 1, 8, 8)
    t, y = torch.tensor([0.2, 0.9]), torch.tensor([3, 10])
    with torch.no_grad():  # the EMA weights were exported
        torch.testing.assert_close(back.net(z, t, y), m.net_ema(z, t, y),
                                   rtol=0, atol=0)


def test_diffusers_ddim_settings_that_reproduce_the_teacher(tmp_path):
    """diffusers' DDIMScheduler reproduces the teacher's CFG-DDIM sampling
    with timestep_spacing='trailing', set_alpha_to_one=True and
    clip_sample=False; loaded from a DDPM folder it inherits
    clip_sample=True (DDPMScheduler's default) and gives other images."""
    from diffusers import DDIMScheduler

    from mmdistill.models.adapters.export import export_teacher_folder
    m = _teacher()
    randomize(m.net, std=0.05, seed=4)
    export_teacher_folder(m, str(tmp_path / 'ddpm'))
    y, w, steps = torch.tensor([0, 1, 2]), 2.0, 4
    noise = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = m.sample(y, noise=noise, steps=steps, guidance=w)

    def diffusers_ddim(**settings):
        sch = DDIMScheduler.from_pretrained(
            str(tmp_path / 'ddpm'), subfolder='scheduler',
            timestep_spacing='trailing', set_alpha_to_one=True, **settings)
        sch.set_timesteps(steps)
        z = noise
        with torch.no_grad():
            for ts in sch.timesteps:
                eps_c, eps_u = m.net.model(
                    torch.cat([z, z]), ts, class_labels=torch.cat(
                        [y, torch.full_like(y, 3)])).sample.chunk(2)
                z = sch.step(eps_u + (1 + w) * (eps_c - eps_u), ts,
                             z).prev_sample
        return sch, z.clamp(-1, 1)

    sch, inherited = diffusers_ddim()
    assert sch.config.clip_sample is True
    _, right = diffusers_ddim(clip_sample=False)
    torch.testing.assert_close(ours, right, atol=2e-3, rtol=0)
    assert (ours - inherited).abs().max() > 1e-2


def test_distill_the_shipped_ddpm_folder(tmp_path):
    """Stage 1 and stage 2 on the shipped real-format teacher, from the
    folder alone (a few iterations): the students of every halving are
    written and sample with one evaluation per step."""
    from _reliability import assert_one_line_error, run_train_inprocess
    s1 = tmp_path / 's1'
    code, err = run_train_inprocess(
        'configs/guided_distill/guided_distill_ddpm_digits.py', s1,
        'train_cfg.max_iters=2', 'param_scheduler.0.end=2')
    assert code in (0, None), err[-2000:]
    s2 = tmp_path / 's2'
    code, err = run_train_inprocess(
        'configs/progressive/progressive_ddpm_digits_32to1.py', s2,
        f'model.teacher_ckpt={s1 / "iter_2.pth"}', 'model.num_steps=4',
        'train_cfg.max_iters=3', 'custom_hooks.1.iters_per_stage=1',
        'param_scheduler.0.end=1')
    assert code in (0, None), err[-2000:]
    from mmdistill.apis import load_student
    for n in (4, 2, 1):
        st = load_student(str(s2 / f'student_{n}step.pth'))
        assert int(st.num_steps) == n and st.prediction_type == 'eps'
        calls = []
        st.net.register_forward_hook(lambda *a: calls.append(1))
        with torch.no_grad():
            x = st.sample(torch.arange(3), steps=n, guidance=2.0)
        assert x.shape == (3, 1, 8, 8) and len(calls) == n
    # the stage-2 config names its stage-1 file; a missing one is one line
    code, err = run_train_inprocess(
        'configs/progressive/progressive_ddpm_digits_32to1.py',
        tmp_path / 's2b', 'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'guided_distill_ddpm_digits/iter_1500')


@pytest.mark.parametrize('damage,match', [
    ('rm unet/config.json', 'missing .*unet/config.json'),
    ('rm scheduler/scheduler_config.json',
     'has no scheduler/scheduler_config.json.*denoiser.scheduler=dict'),
    ('prediction_type velocity',
     "unsupported prediction_type 'velocity' in .*scheduler_config.json"),
    ('beta_schedule sigmoid',
     "unsupported beta_schedule 'sigmoid' in .*scheduler_config.json"),
])
def test_damaged_ddpm_folder_is_one_line(tmp_path, damage, match):
    """A DDPM folder without its network or scheduler config, or with a
    prediction type / beta schedule mmdistill does not know: a one-line
    error naming the file (a missing scheduler is not replaced by a
    default: the betas would be a guess)."""
    import shutil

    from mmdistill.utils import UserError
    folder = tmp_path / 'ddpm'
    shutil.copytree(os.path.join(ROOT, 'checkpoints', 'ddpm-unet2d-digits'),
                    folder)
    op, what = damage.split(' ', 1)
    if op == 'rm':
        os.remove(folder / what)
    else:
        path = folder / 'scheduler' / 'scheduler_config.json'
        cfg = json.loads(path.read_text())
        cfg[op] = what
        path.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=match) as e:
        _teacher(pretrained=str(folder))
    assert '\n' not in str(e.value)
    if op == 'rm' and 'scheduler' in what:  # the documented way out
        t = _teacher(pretrained=str(folder), scheduler=SCHED)
        assert t.prediction_type == 'eps'
