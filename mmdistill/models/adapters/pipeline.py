"""Sampling pipeline of an exported distilled model (stand-alone).

This file imports only torch and diffusers (and transformers for text
models): ``tools/export.py`` copies it into every exported folder as
``pipeline_mmdistill.py``, so a diffusers user samples the student without
mmdistill or mmagic installed::

    import importlib.util, torch
    spec = importlib.util.spec_from_file_location(
        'pipeline_mmdistill', 'OUT_DIR/pipeline_mmdistill.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    pipe = mod.DistilledPipeline.from_pretrained('OUT_DIR')
    images = pipe([207, 360], num_inference_steps=4, guidance=3.0)  # DiT
    images = pipe(['a photo of a cat'], num_inference_steps=4, guidance=7)

Guidance convention (Meng et al.): the student was distilled from
x_w = (1 + w) x_cond - w x_uncond, i.e. diffusers' guidance_scale = 1 + w;
one network evaluation per step, w is an input of the network.

Time: the model's discrete DDPM schedule alpha_bar_k (k = 1..K) sits at
t_k = k / K with log-SNR interpolated linearly in between (t = 0: log-SNR
clipped at 20); N deterministic DDIM steps walk t_i = i / N, i = N..1,
feeding the network the timestep t K - 1:

    x_hat = x-prediction of the network output (eps / v / sample)
    z_s   = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t.
"""
import json
import math
import os.path as osp

import torch

CONFIG_NAME = 'mmdistill_pipeline.json'


# -- schedule and DDIM (the same equations as mmdistill.diffusion) ---------
def _betas(cfg):
    if cfg.get('trained_betas') is not None:
        return torch.as_tensor(cfg['trained_betas'], dtype=torch.float64)
    k = int(cfg.get('num_train_timesteps', 1000))
    b0 = float(cfg.get('beta_start', 1e-4))
    b1 = float(cfg.get('beta_end', 0.02))
    if cfg.get('beta_schedule', 'linear') == 'scaled_linear':
        return torch.linspace(b0**0.5, b1**0.5, k, dtype=torch.float64)**2
    return torch.linspace(b0, b1, k, dtype=torch.float64)


class _CosineSchedule:
    """alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2) (alpha_1 = 0)."""

    def alpha_sigma(self, t):
        alpha = torch.where(t >= 1, torch.zeros_like(t),
                            torch.cos(math.pi / 2 * t))
        return alpha.clamp_min(0.0), torch.sin(math.pi / 2 * t).clamp_min(0.0)

    def timestep(self, t):
        return t


def _schedule(config):
    """The exported model's schedule: ``schedule.type == 'cosine'``
    (mmdistill's own networks) or the discrete DDPM betas of
    ``scheduler``."""
    if config.get('schedule', {}).get('type') == 'cosine':
        return _CosineSchedule()
    return _Schedule(config['scheduler'])


class _Schedule:
    """alpha_t, sigma_t of the discrete schedule in continuous time."""

    def __init__(self, scheduler_config):
        alpha_bar = torch.cumprod(1 - _betas(scheduler_config), 0)
        self.k = len(alpha_bar)
        lam = torch.log(alpha_bar) - torch.log1p(-alpha_bar)
        self.lam = torch.cat([lam.new_tensor([20.0]), lam.clamp(-20, 20)])

    def alpha_sigma(self, t):
        pos = t.double().clamp(0, 1) * self.k
        lo = pos.floor().long().clamp(max=self.k - 1)
        frac = pos - lo
        lam = self.lam.to(t.device)
        lam = (lam[lo] * (1 - frac) + lam[lo + 1] * frac).to(t.dtype)
        return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()

    def timestep(self, t):
        return t.float() * self.k - 1


def _fourier(w, dim, scale=1000.0, max_period=10000.0):
    """[cos, sin](scale w P^(-k / (dim/2))): the features of the hooked
    guidance embedding."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(
        half, dtype=torch.float32, device=w.device) / half)
    args = scale * w.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, emb.new_zeros(emb.shape[0], 1)], dim=-1)
    return emb


def _lcm_fourier(w, dim, scale=1000.0, max_period=10000.0):
    """[sin, cos](scale w P^(-k / (dim/2 - 1))): ``timestep_cond`` of the
    native time_cond_proj_dim path (diffusers' LCM form)."""
    half = dim // 2
    step = torch.log(torch.tensor(max_period)) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    args = (w.float() * scale)[:, None] * freqs.to(w.device)[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def _to_x(out, z, a, s, pred):
    a, s = a.view(-1, 1, 1, 1), s.view(-1, 1, 1, 1)
    if pred == 'x':
        return out
    if pred == 'eps':
        return (z - s * out) / a.clamp_min(1e-12)
    return a * z - s * out


def _ddim(z, x_hat, a_t, s_t, a_s, s_s):
    a_t, s_t = a_t.view(-1, 1, 1, 1), s_t.view(-1, 1, 1, 1)
    a_s, s_s = a_s.view(-1, 1, 1, 1), s_s.view(-1, 1, 1, 1)
    eps = (z - a_t * x_hat) / s_t.clamp_min(1e-12)
    return a_s * x_hat + s_s * eps


def _portable_class(folder, subfolder, name):
    """A class of the ``portable.py`` shipped in ``folder/subfolder``
    (mmdistill's own networks)."""
    import importlib.util
    path = osp.join(folder, subfolder, 'portable.py')
    spec = importlib.util.spec_from_file_location(
        f'mmdistill_portable_{abs(hash(path))}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)


class DistilledPipeline:
    """An exported mmdistill student: plain diffusers networks plus the
    settings in ``mmdistill_pipeline.json``.

    Attributes:
        network: UNet2DModel / DiTTransformer2DModel / UNet2DConditionModel.
        guidance_proj (torch.nn.Linear | None): the guidance embedding of a
            UNet2DModel / DiT student (added to the time embedding).
        vae, text_encoder, tokenizer: latent / text models, else None.
    """

    def __init__(self, config, network, guidance_proj=None, vae=None,
                 text_encoder=None, tokenizer=None):
        self.config = config
        self.network, self.guidance_proj = network.eval(), guidance_proj
        self.vae, self.text_encoder = vae, text_encoder
        self.tokenizer = tokenizer
        self.schedule = _schedule(config)
        self._w_emb = None
        if guidance_proj is not None:
            for m in self._embed_modules():
                m.register_forward_hook(self._add_guidance)

    @classmethod
    def from_pretrained(cls, folder, device='cpu', torch_dtype=None):
        import diffusers
        with open(osp.join(folder, CONFIG_NAME)) as f:
            config = json.load(f)
        kw = dict(torch_dtype=torch_dtype) if torch_dtype else {}
        net_cls = getattr(diffusers, config['network_class'], None) or \
            _portable_class(folder, config['network_subfolder'],
                            config['network_class'])
        network = net_cls.from_pretrained(
            osp.join(folder, config['network_subfolder']), **kw).to(device)
        proj = None
        ge = config.get('guidance_embedding')
        if ge and ge['type'] == 'hooked_fourier_linear':
            from safetensors.torch import load_file
            state = load_file(osp.join(folder, ge['file']))
            state = {k[len('proj.'):] if k.startswith('proj.') else k: v
                     for k, v in state.items()}
            proj = torch.nn.Linear(ge['feat_dim'], ge['emb_dim'])
            proj.load_state_dict(state)
            proj = proj.to(device)
        vae = text_encoder = tokenizer = None
        if config.get('latent'):
            vae = diffusers.AutoencoderKL.from_pretrained(
                osp.join(folder, 'vae'), **kw).to(device).eval()
        if config.get('condition') == 'text':
            from transformers import CLIPTextModel, CLIPTokenizer
            text_encoder = CLIPTextModel.from_pretrained(
                osp.join(folder, 'text_encoder')).to(device).eval()
            tokenizer = CLIPTokenizer.from_pretrained(
                osp.join(folder, 'tokenizer'))
        return cls(config, network, proj, vae, text_encoder, tokenizer)

    # -- network -----------------------------------------------------------
    def _embed_modules(self):
        if self.config['network_class'] == 'DiTTransformer2DModel':
            return [b.norm1.emb for b in self.network.transformer_blocks]
        return [self.network.time_embedding]

    def _add_guidance(self, module, inputs, output):
        return output if self._w_emb is None else output + self._w_emb.to(
            output.dtype)

    @property
    def device(self):
        return next(self.network.parameters()).device

    def _net(self, z, t, cond, w):
        cfg, net = self.config, self.network
        dtype = next(net.parameters()).dtype
        ts = self.schedule.timestep(t)
        if self.guidance_proj is not None:
            self._w_emb = self.guidance_proj(_fourier(
                w, self.guidance_proj.in_features,
                cfg['guidance_embedding'].get('scale', 1000.0)))
        if cfg['network_class'] == 'CompactUNet':
            # mmdistill's own network: continuous t, w as an input
            return net(z.to(dtype), t.to(dtype), cond, w.to(dtype)).to(
                z.dtype)
        if cfg['network_class'] == 'UNet2DConditionModel':
            tc = None
            if net.config.time_cond_proj_dim is not None:
                tc = _lcm_fourier(w, net.config.time_cond_proj_dim).to(dtype)
            out = net(z.to(dtype), ts, encoder_hidden_states=cond.to(dtype),
                      timestep_cond=tc).sample
        elif cfg['network_class'] == 'DiTTransformer2DModel':
            out = net(z.to(dtype), timestep=ts, class_labels=cond).sample
            out = out[:, :z.shape[1]]
        else:
            labels = cond if net.config.num_class_embeds else None
            out = net(z.to(dtype), ts, class_labels=labels).sample
        return out.to(z.dtype)

    @torch.no_grad()
    def encode_prompt(self, prompts):
        ids = self.tokenizer(list(prompts), padding='max_length',
                             max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors='pt').input_ids
        return self.text_encoder(ids.to(self.device))[0].float()

    @torch.no_grad()
    def __call__(self, conditions, num_inference_steps=None, guidance=None,
                 noise=None, generator=None, output_latents=False):
        """Sample images in [-1, 1] (B, C, H, W).

        Args:
            conditions: class indices (class models) or prompts / prompt
                embeddings (text models).
            num_inference_steps (int): DDIM steps N (default: the number the
                student was distilled for).
            guidance (float): w (Meng); diffusers' guidance_scale = 1 + w.
            noise (Tensor): the initial z_1, else drawn with ``generator``.
        """
        cfg = self.config
        n = int(num_inference_steps or cfg['num_inference_steps'])
        w = float(cfg['guidance_default'] if guidance is None else guidance)
        if cfg.get('condition') == 'text':
            cond = conditions if torch.is_tensor(conditions) else \
                self.encode_prompt(conditions)
            b = len(cond)
        else:
            cond = torch.as_tensor(conditions, device=self.device).long()
            b = len(cond)
        cond = cond.to(self.device)
        shape = (b, ) + tuple(cfg['sample_shape'])
        z = noise.to(self.device) if noise is not None else torch.randn(
            shape, generator=generator).to(self.device)
        wt = torch.full((b, ), w, device=self.device, dtype=z.dtype)
        grid = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64)
        for t, s in zip(grid[:-1], grid[1:]):
            tt = torch.full((b, ), float(t), device=z.device, dtype=z.dtype)
            ss = torch.full((b, ), float(s), device=z.device, dtype=z.dtype)
            a_t, s_t = self.schedule.alpha_sigma(tt)
            x_hat = _to_x(self._net(z, tt, cond, wt), z, a_t, s_t,
                          cfg['prediction_type'])
            z = _ddim(z, x_hat, a_t, s_t, *self.schedule.alpha_sigma(ss))
        if output_latents or self.vae is None:
            return z if output_latents else z.clamp(-1, 1)
        vcfg = self.vae.config
        shift = getattr(vcfg, 'shift_factor', None) or 0.0
        x = self.vae.decode((z / vcfg.scaling_factor + shift).to(
            next(self.vae.parameters()).dtype)).sample
        return x.float().clamp(-1, 1)


try:  # the diffusers front end (DiffusionPipeline.from_pretrained)
    from diffusers import DiffusionPipeline
    from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
except ImportError:  # pragma: no cover - diffusers is a dependency
    DiffusionPipeline = object


class MMDistillPipeline(DiffusionPipeline):
    """An exported student as a diffusers pipeline::

        from diffusers import DiffusionPipeline
        pipe = DiffusionPipeline.from_pretrained(folder,
                                                 trust_remote_code=True)
        images = pipe(class_labels=[3, 7], num_inference_steps=4,
                      guidance=2.0, output_type='pt').images

    (``trust_remote_code``: the class is this file, shipped in the folder,
    as is ``portable.py`` for mmdistill's own networks and the guidance
    embedding.) Components: ``unet`` or ``transformer`` (the student),
    ``guidance_embedding`` (w -> time-embedding offset of diffusers
    networks; mmdistill's CompactUNet carries its own), ``scheduler`` (the
    DDPM betas with the prediction type, a DDIMScheduler; None for the
    continuous cosine schedule), ``vae`` / ``text_encoder`` / ``tokenizer``
    (latent and text models). ``mmdistill`` holds the settings of
    ``mmdistill_pipeline.json``. Sampling is :class:`DistilledPipeline`'s
    N-step DDIM on t_i = i / N with one network evaluation per step.
    """

    _optional_components = ['scheduler', 'unet', 'transformer',
                            'guidance_embedding', 'vae', 'text_encoder',
                            'tokenizer']

    def __init__(self, scheduler=None, unet=None, transformer=None,
                 guidance_embedding=None, vae=None, text_encoder=None,
                 tokenizer=None, mmdistill=None):
        super().__init__()
        self.register_modules(scheduler=scheduler, unet=unet,
                              transformer=transformer,
                              guidance_embedding=guidance_embedding,
                              vae=vae, text_encoder=text_encoder,
                              tokenizer=tokenizer)
        self.register_to_config(mmdistill=mmdistill)
        self._sampler = None

    def _get_sampler(self):
        if self._sampler is None:
            ge = self.guidance_embedding
            self._sampler = DistilledPipeline(
                dict(self.config.mmdistill),
                self.unet if self.unet is not None else self.transformer,
                ge.proj if ge is not None else None, self.vae,
                self.text_encoder, self.tokenizer)
        return self._sampler

    @torch.no_grad()
    def __call__(self, class_labels=None, prompt=None,
                 num_inference_steps=None, guidance=None, noise=None,
                 generator=None, output_type='pil', return_dict=True):
        """Sample one image per class label (or prompt).

        Args:
            class_labels: class indices (class models).
            prompt: prompts or prompt embeddings (text models).
            num_inference_steps (int): N (default: the distilled N).
            guidance (float): w (Meng); diffusers' guidance_scale = 1 + w.
            noise (Tensor): the initial z_1, else drawn with ``generator``.
            output_type (str): 'pil', 'np' or 'pt' (images in [0, 1]).
        """
        cond = prompt if class_labels is None else class_labels
        x = self._get_sampler()(cond, num_inference_steps, guidance, noise,
                                generator)
        images = (x + 1) / 2
        if output_type == 'pt':
            pass
        elif output_type in ('np', 'pil'):
            images = images.permute(0, 2, 3, 1).cpu().float().numpy()
            if output_type == 'pil':
                images = self.numpy_to_pil(images)
        else:
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got "
                             f'{output_type!r}')
        return ImagePipelineOutput(images=images) if return_dict else (
            images, )
