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
        self.schedule = _Schedule(config['scheduler'])
        self._w_emb = None
        if guidance_proj is not None:
            for m in self._embed_modules():
                m.register_forward_hook(self._add_guidance)

    @classmethod
    def from_pretrained(cls, folder, device='cpu', torch_dtype=None):
        import diffusers
        with open(osp.join(folder, CONFIG_NAME)) as f:
            config = json.load(f)
        net_cls = getattr(diffusers, config['network_class'])
        kw = dict(torch_dtype=torch_dtype) if torch_dtype else {}
        network = net_cls.from_pretrained(
            osp.join(folder, config['network_subfolder']), **kw).to(device)
        proj = None
        ge = config.get('guidance_embedding')
        if ge and ge['type'] == 'hooked_fourier_linear':
            from safetensors.torch import load_file
            state = load_file(osp.join(folder, ge['file']))
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
