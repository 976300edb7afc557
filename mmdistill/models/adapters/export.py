"""Export a distilled student as a diffusers-format folder.

Layout::

    OUT_DIR/
      unet/ | transformer/      the student network (save_pretrained)
      guidance_embedding/       UNet2DModel / DiT students: the w-embedding
                                Linear(Fourier(w)) (the text UNet carries it
                                natively: time_cond_proj_dim; CompactUNet
                                inside unet/), with portable.py
      vae/  text_encoder/  tokenizer/   latent / text models
      scheduler/                the model's DDPM betas (a DDIMScheduler
                                config with the prediction type)
      mmdistill_pipeline.json   steps, the w convention, prediction type,
                                schedule, sample shape, ...
      pipeline_mmdistill.py     stand-alone sampler (torch + diffusers):
                                DistilledPipeline, and MMDistillPipeline
                                for diffusers' DiffusionPipeline
      model_index.json          the MMDistillPipeline's components
"""
import copy
import json
import os
import os.path as osp
import shutil

import torch

from mmdistill.utils import UserError, atomic_write
from ..denoisers import portable as _portable
from ..denoisers.portable import CompactUNet
from ..lora import lora_layers, unload_lora
from . import pipeline as _pipeline
from .networks import (PREDICTION_MAP_INV, DiffusersDiT, DiffusersTextUNet,
                       DiffusersUNet2D)
from .pipeline import MMDistillPipeline

SUBFOLDERS = {DiffusersUNet2D: 'unet', DiffusersDiT: 'transformer',
              DiffusersTextUNet: 'unet'}


def export_student(model, out_dir, num_steps=None, guidance=None,
                   sample_model='ema'):
    """Write ``model``'s student (a GuidanceDistiller / ProgressiveDistiller
    / DiffusersCFGDiffusion whose net is a diffusers adapter or mmdistill's
    CompactUNet) to ``out_dir`` as a diffusers pipeline folder
    (``model_index.json``, :class:`MMDistillPipeline`); returns the
    pipeline config dict. A LoRA student is exported merged (W + (alpha /
    r) B A, the original architecture)."""
    net = model.pick_net(sample_model) if hasattr(model, 'pick_net') else \
        model.net
    if lora_layers(net):
        net = unload_lora(net)
    if isinstance(net, CompactUNet):
        return _export_compact(model, net, out_dir, num_steps, guidance)
    sub = SUBFOLDERS.get(type(net))
    if sub is None:
        raise UserError(f'cannot export a {type(net).__name__} student to '
                        'diffusers format: export supports students of the '
                        'diffusers adapters (DiffusersUNet2D, DiffusersDiT, '
                        'DiffusersTextUNet) and of CompactUNet')
    pred = student_prediction_type(model, net)
    os.makedirs(out_dir, exist_ok=True)
    net.model.save_pretrained(osp.join(out_dir, sub))
    cfg = dict(
        **_sampling_settings(model, type(net.model).__name__, sub, pred,
                             num_steps, guidance),
        scheduler=dict(net.scheduler_config, prediction_type=
                       PREDICTION_MAP_INV[pred]),
        time_convention='t_i = i / N (i = N..1), timestep = t * K - 1, '
        'log-SNR interpolated linearly between t_k = k / K',
        sampler='ddim',
        sample_shape=list(model.image_shape),
        num_classes=int(getattr(net, 'num_classes', 0)),
        condition=getattr(net, 'condition_type', 'class'),
    )
    if cfg['condition'] == 'class':
        cfg['null_class'] = cfg['num_classes']
    ge = getattr(net, 'guidance_emb', None)
    if ge is not None:
        _save_portable(copy.deepcopy(ge).cpu().float(),
                       osp.join(out_dir, 'guidance_embedding'))
        cfg['guidance_embedding'] = dict(
            type='hooked_fourier_linear',
            file='guidance_embedding/diffusion_pytorch_model.safetensors',
            feat_dim=ge.feat_dim,
            emb_dim=ge.proj.out_features, scale=ge.scale,
            added_to='time_embedding' if sub == 'unet' else
            'transformer_blocks[*].norm1.emb')
    elif isinstance(net, DiffusersTextUNet) and net.guidance_enabled:
        cfg['guidance_embedding'] = dict(
            type='time_cond_proj',
            features='LCM get_guidance_scale_embedding(w), w = '
            'guidance_scale - 1')
    pre = getattr(model, 'data_preprocessor', None)
    cfg['latent'] = hasattr(pre, 'vae')
    if cfg['latent']:
        pre.vae.vae.save_pretrained(osp.join(out_dir, 'vae'))
    if cfg['condition'] == 'text':
        te = getattr(pre, 'text_encoder', None)
        if te is None:
            raise UserError('a text model is exported with its text encoder: '
                            'set data_preprocessor.text_encoder to the model '
                            'folder')
        te.text_encoder.save_pretrained(osp.join(out_dir, 'text_encoder'))
        te.tokenizer.save_pretrained(osp.join(out_dir, 'tokenizer'))
    from diffusers import DDIMScheduler
    sc = net.scheduler_config
    DDIMScheduler(
        num_train_timesteps=int(sc.get('num_train_timesteps', 1000)),
        beta_start=float(sc.get('beta_start', 1e-4)),
        beta_end=float(sc.get('beta_end', 0.02)),
        beta_schedule=sc.get('beta_schedule', 'linear'),
        trained_betas=sc.get('trained_betas'),
        prediction_type=PREDICTION_MAP_INV[pred],
        clip_sample=False, set_alpha_to_one=True,
        timestep_spacing='trailing').save_pretrained(
            osp.join(out_dir, 'scheduler'))
    components = dict(
        scheduler=['diffusers', 'DDIMScheduler'],
        guidance_embedding=['portable', 'GuidanceEmbedding']
        if ge is not None else None,
        vae=['diffusers', 'AutoencoderKL'] if cfg['latent'] else None,
        text_encoder=['transformers', 'CLIPTextModel']
        if cfg['condition'] == 'text' else None,
        tokenizer=['transformers', 'CLIPTokenizer']
        if cfg['condition'] == 'text' else None)
    components[sub] = ['diffusers', cfg['network_class']]
    _write_pipeline_files(out_dir, cfg, components)
    return cfg


def _sampling_settings(model, network_class, subfolder, pred, num_steps,
                       guidance):
    """The settings every exported folder records: the network, steps N,
    the default w and its convention, the prediction type."""
    return dict(
        format_version=1, network_class=network_class,
        network_subfolder=subfolder,
        num_inference_steps=int(num_steps or model.default_sample.get(
            'steps', 1)),
        guidance_default=float(model.default_sample.get('guidance', 0.0)
                               if guidance is None else guidance),
        guidance_convention='Meng: x_w = (1 + w) x_cond - w x_uncond; '
        'diffusers guidance_scale = 1 + w; w is a network input, one '
        'evaluation per step',
        prediction_type=pred)


def _save_portable(module, folder):
    """``save_pretrained`` of a :mod:`~mmdistill.models.denoisers.portable`
    model plus the module file diffusers loads it from."""
    module.save_pretrained(folder)
    shutil.copyfile(_portable.__file__, osp.join(folder, 'portable.py'))


def _write_pipeline_files(out_dir, cfg, components):
    """``mmdistill_pipeline.json``, ``pipeline_mmdistill.py`` and
    ``model_index.json`` (the :class:`MMDistillPipeline` with
    ``components``: name -> [library, class] or None)."""
    import diffusers
    atomic_write(osp.join(out_dir, _pipeline.CONFIG_NAME),
                 lambda f: f.write(json.dumps(cfg, indent=2)), mode='w')
    shutil.copyfile(_pipeline.__file__,
                    osp.join(out_dir, 'pipeline_mmdistill.py'))
    index = {'_class_name': ['pipeline_mmdistill', 'MMDistillPipeline'],
             '_diffusers_version': diffusers.__version__}
    for name in MMDistillPipeline._optional_components:
        index[name] = components.get(name) or [None, None]
    index['mmdistill'] = cfg
    atomic_write(osp.join(out_dir, 'model_index.json'),
                 lambda f: f.write(json.dumps(index, indent=2)), mode='w')


def _export_compact(model, net, out_dir, num_steps, guidance):
    """A CompactUNet student (continuous cosine schedule): ``unet/`` is the
    network itself (a diffusers ModelMixin) with ``portable.py``."""
    from mmdistill.diffusion import CosineSchedule
    if not isinstance(model.schedule, CosineSchedule):
        raise UserError(f'export of a CompactUNet student supports the '
                        f'cosine schedule; this model uses {model.schedule}')
    pred = student_prediction_type(model, net)
    os.makedirs(out_dir, exist_ok=True)
    _save_portable(copy.deepcopy(net).cpu().float(),
                   osp.join(out_dir, 'unet'))
    cfg = dict(
        **_sampling_settings(model, 'CompactUNet', 'unet', pred, num_steps,
                             guidance),
        schedule=dict(type='cosine'),
        time_convention='continuous t in [0, 1], alpha_t = cos(pi t / 2), '
        'sigma_t = sin(pi t / 2); t_i = i / N (i = N..1)',
        sampler='ddim', sample_shape=list(model.image_shape),
        num_classes=int(net.num_classes), condition='class',
        null_class=int(net.num_classes), latent=False)
    _write_pipeline_files(out_dir, cfg,
                          dict(unet=['portable', 'CompactUNet']))
    return cfg


def student_prediction_type(model, net):
    """What the student network outputs: the distiller's
    ``prediction_type`` (a stage-1 student of another parameterisation than
    its teacher must have finished changing its readout), else the
    network's.

    Raises:
        UserError: a stage-1 student half-way through the change.
    """
    if hasattr(model, 'readout_s') and model.readout_s() < 1:
        raise UserError(
            f'this stage-1 student is still changing its parameterisation '
            f'to {model.prediction_type!r} (s = {model.readout_s():.2f} of '
            '1); export a checkpoint written after reparam_iters updates')
    return getattr(model, 'prediction_type', None) or net.prediction_type


TEACHER_LAYOUTS = {'ddpm': DiffusersUNet2D, 'dit': DiffusersDiT}


def export_teacher_folder(model, out_dir, sample_model='ema',
                          layout='ddpm'):
    """Write a trained ``DiffusersCFGDiffusion`` teacher as the folder its
    kind of pretrained model ships in, with ``DDPMScheduler`` holding the
    training betas and prediction type:

    - ``layout='ddpm'`` (a pixel ``DiffusersUNet2D``): ``model_index.json``
      (``DDPMPipeline``), ``unet/``, ``scheduler/``;
    - ``layout='dit'`` (a latent ``DiffusersDiT`` with its VAE):
      ``model_index.json`` (``DiTPipeline``), ``transformer/``, ``vae/``,
      ``scheduler/`` (the facebook/DiT-XL-2-256 layout).

    Returns the folder.

    Raises:
        UserError: the model's network does not fit the layout.
    """
    from diffusers import DDPMScheduler
    net = model.pick_net(sample_model) if hasattr(model, 'pick_net') else \
        model.net
    cls = TEACHER_LAYOUTS[layout]
    if not isinstance(net, cls) or getattr(net, 'guidance_emb',
                                           None) is not None:
        raise UserError(
            f'--layout {layout} writes a diffusers '
            f'{cls.model_cls_name} teacher; this model\'s network is a '
            f'{type(net).__name__}'
            + (' with a guidance embedding (a student: use the default '
               'pipeline layout)' if isinstance(net, cls) else ''))
    sc = net.scheduler_config
    keys = ('num_train_timesteps', 'beta_start', 'beta_end', 'beta_schedule',
            'trained_betas')
    scheduler = DDPMScheduler(
        **{k: sc[k] for k in keys if sc.get(k) is not None},
        prediction_type=PREDICTION_MAP_INV[net.prediction_type],
        # latents are not in [-1, 1]; pixel folders keep diffusers' default
        clip_sample=layout == 'ddpm')
    model_cpu = copy.deepcopy(net.model).cpu().float()
    if layout == 'ddpm':
        from diffusers import DDPMPipeline
        DDPMPipeline(unet=model_cpu,
                     scheduler=scheduler).save_pretrained(out_dir)
        return out_dir
    from diffusers import DiTPipeline
    vae = getattr(model.data_preprocessor, 'vae', None)
    if vae is None:
        raise UserError('--layout dit needs a latent teacher: its '
                        'data_preprocessor must be a LatentDataPreprocessor '
                        'with the VAE')
    DiTPipeline(transformer=model_cpu, vae=copy.deepcopy(vae.vae).cpu(),
                scheduler=scheduler).save_pretrained(out_dir)
    return out_dir


def load_pipeline(folder, device='cpu'):
    """Load an exported folder through its own copied
    ``pipeline_mmdistill.py`` (what a user without mmdistill does)."""
    import importlib.util
    path = osp.join(folder, 'pipeline_mmdistill.py')
    if not osp.isfile(path):
        raise UserError(f'not an exported mmdistill folder: missing {path}')
    spec = importlib.util.spec_from_file_location(
        f'pipeline_mmdistill_{abs(hash(folder))}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DistilledPipeline.from_pretrained(folder, device=device)


def default_steps(model):
    n = getattr(model, 'num_steps', None)
    return int(n) if torch.is_tensor(n) else None
