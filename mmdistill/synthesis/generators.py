"""Generator adapters for dataset synthesis.

An adapter exposes what mode-guided sampling needs, in the space the
diffusion runs in ("diffusion space": pixels or a VAE latent):

- ``schedule`` (``alpha_sigma(t)``), ``sample_shape`` (C, H, W),
  ``num_classes`` (label ``num_classes`` is the null class);
- ``encode(images) -> z0`` (images (B, C, H, W) in [-1, 1]);
- ``decode(z0) -> images`` in [-1, 1];
- ``x_fn(labels, guidance) -> x_fn(z, t)``: the CFG clean estimate
  (1 + w) x_hat_c - w x_hat_u (Meng's w; diffusers' guidance_scale = 1 + w).
"""
import os

import torch

from mmdistill.diffusion import DiscreteSchedule, cfg_combine, x_from_eps
from mmdistill.registry import MODELS
from mmdistill.utils import (UserError, load_into, load_state_dict,
                             sub_state_dict)
from mmdistill.registry import SYNTHESIS


def _device(device):
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)


@SYNTHESIS.register_module()
class PixelTeacherGenerator:
    """A pixel-space CFG teacher (``CFGDiffusion``) from a model config and a
    checkpoint (``net_ema.*`` preferred over ``net.*``).

    Args:
        model_config (str): config file whose ``model`` is the teacher.
        checkpoint (str): teacher weights (mmengine checkpoint or state dict).
        sample_model (str): 'ema' (``net_ema.*`` if present, else
            ``net.*``) or 'orig' (the raw ``net.*`` weights).
        device (str): 'auto', 'cpu' or 'cuda'.
    """

    def __init__(self, model_config, checkpoint, sample_model='ema',
                 device='auto'):
        from mmdistill.apis import load_config
        from mmdistill import register_all_modules
        register_all_modules(init_default_scope=False)
        cfg = load_config(model_config)
        if 'model' not in cfg:
            raise UserError(f'{model_config} defines no model')
        model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') \
            else dict(cfg.model)
        self.model = MODELS.build(model_cfg)
        state = load_state_dict(checkpoint)
        if sample_model not in ('ema', 'orig'):
            raise UserError(f"sample_model must be 'ema' or 'orig', got "
                            f'{sample_model!r}')
        prefix, sub = sub_state_dict(
            state, ('net_ema.', 'net.') if sample_model == 'ema' else
            ('net.', ))
        if not sub:
            raise UserError(f'teacher checkpoint {checkpoint} has no net.* '
                            'or net_ema.* weights (is it a CFGDiffusion '
                            'checkpoint?)')
        load_into(self.model.net, sub, 'teacher', checkpoint)
        if self.model.net_ema is not None:
            load_into(self.model.net_ema, sub, 'teacher', checkpoint)
        self.device = _device(device)
        self.model.to(self.device).eval()
        self.schedule = self.model.schedule
        self.sample_shape = tuple(self.model.image_shape)
        self.num_classes = self.model.num_classes

    def encode(self, images):
        return images.to(self.device)

    def decode(self, z):
        return z.clamp(-1, 1)

    def x_fn(self, labels, guidance):
        labels = labels.to(self.device)
        w = torch.as_tensor(guidance, dtype=torch.float32,
                            device=self.device).expand(len(labels))
        return self.model.guided_x_fn(labels, w, 'ema')


def _from_pretrained(cls, path, what):
    if not path or not os.path.isdir(path):
        raise UserError(f'{what} folder not found: {path} (save it with '
                        f'{cls.__name__}.save_pretrained(folder) or download '
                        'it beforehand; nothing is downloaded here)')
    if not os.path.isfile(os.path.join(path, 'config.json')):
        raise UserError(f'{what} folder {path} has no config.json (point to '
                        'the folder written by save_pretrained, e.g. '
                        '<repo>/transformer or <repo>/vae)')
    try:
        return cls.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, EnvironmentError) as e:
        raise UserError(f'cannot load {what} from {path}: '
                        f'{str(e).splitlines()[0][:200]}') from e


@SYNTHESIS.register_module()
class DiTLatentGenerator:
    """A class-conditional diffusers ``DiTTransformer2DModel`` in the latent
    space of its ``AutoencoderKL``, both loaded from local folders.

    Time: the discrete DDPM schedule of K steps (linear betas, diffusers'
    default for DiT) as a :class:`DiscreteSchedule`; continuous t maps to the
    network timestep ``t * K - 1`` (t = k / K is DDPM step k, alpha_t^2 =
    alpha_bar_k). The DiT predicts eps (and, with learned sigma, a variance
    in the second half of its 2C output channels, dropped here):

        x_hat0 = (z - sigma_t eps_hat) / alpha_t

    CFG is applied on x_hat0 (equivalent to eps-CFG: the map is affine).
    Latents: z0 = VAE latent mean * scaling_factor (0.18215 for SD VAEs).

    Args:
        transformer (str): folder of the DiT (``config.json`` + weights).
        vae (str): folder of the AutoencoderKL.
        num_classes (int | None): class count; default the DiT's
            ``num_embeds_ada_norm`` (1000); the null label equals it.
        class_labels (list[int] | None): DiT label of each data-set class
            (e.g. ImageNette folder i -> ImageNet index); None: identity.
        beta_schedule, beta_start, beta_end, num_train_timesteps: the
            training schedule of the DiT.
        device (str): 'auto', 'cpu' or 'cuda'.
        dtype (str): 'float32', 'float16' or 'bfloat16' for the networks.
        vae_batch_size (int): images per VAE call.
    """

    def __init__(self, transformer, vae, num_classes=None, class_labels=None,
                 beta_schedule='linear', beta_start=1e-4, beta_end=0.02,
                 num_train_timesteps=1000, device='auto', dtype='float32',
                 vae_batch_size=32):
        from diffusers import AutoencoderKL, DiTTransformer2DModel
        self.device = _device(device)
        self.dtype = getattr(torch, dtype)
        self.net = _from_pretrained(DiTTransformer2DModel, transformer,
                                    'DiT transformer').to(
                                        self.device, self.dtype).eval()
        self.vae = _from_pretrained(AutoencoderKL, vae, 'VAE').to(
            self.device, self.dtype).eval()
        cfg = self.net.config
        self.num_classes = int(num_classes or cfg.num_embeds_ada_norm)
        self.class_labels = None if class_labels is None else torch.as_tensor(
            list(class_labels), dtype=torch.long)
        if self.class_labels is not None and (
                self.class_labels.min() < 0
                or self.class_labels.max() >= self.num_classes):
            raise UserError(f'class_labels must be in [0, {self.num_classes})')
        self.latent_channels = int(cfg.in_channels)
        self.sample_shape = (self.latent_channels, int(cfg.sample_size),
                             int(cfg.sample_size))
        self.schedule = DiscreteSchedule(
            beta_schedule=beta_schedule, beta_start=beta_start,
            beta_end=beta_end, num_train_timesteps=num_train_timesteps)
        self.scaling = float(self.vae.config.scaling_factor)
        self.vae_batch_size = int(vae_batch_size)

    def map_labels(self, labels):
        labels = torch.as_tensor(labels, dtype=torch.long)
        if self.class_labels is not None:
            labels = self.class_labels[labels]
        return labels.to(self.device)

    @torch.no_grad()
    def encode(self, images):
        out = []
        for chunk in images.split(self.vae_batch_size):
            chunk = chunk.to(self.device, self.dtype)
            mean = self.vae.encode(chunk).latent_dist.mean
            out.append(mean.float() * self.scaling)
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, z):
        out = []
        for chunk in z.split(self.vae_batch_size):
            chunk = (chunk / self.scaling).to(self.device, self.dtype)
            out.append(self.vae.decode(chunk).sample.float().clamp(-1, 1))
        return torch.cat(out)

    def timestep(self, t):
        """Network timestep t * K - 1 (rounded, clamped to [0, K - 1])."""
        k = self.schedule.num_train_timesteps
        return self.schedule.timestep(t.double()).round().clamp(0, k - 1)

    def eps(self, z, t, y):
        """eps_hat: the first C output channels (learned sigma dropped)."""
        out = self.net(z.to(self.dtype), timestep=self.timestep(t).to(
            self.device), class_labels=y).sample
        return out[:, :self.latent_channels].float()

    def x_fn(self, labels, guidance):
        y = self.map_labels(labels)
        null = torch.full_like(y, self.num_classes)
        w = float(guidance)

        @torch.no_grad()
        def fn(z, t):
            alpha, sigma = self.schedule.alpha_sigma(t)
            if w == 0:
                return x_from_eps(z, self.eps(z, t, y), alpha, sigma)
            z2, t2 = torch.cat([z, z]), torch.cat([t, t])
            eps = self.eps(z2, t2, torch.cat([y, null]))
            x2 = x_from_eps(z2, eps, torch.cat([alpha, alpha]),
                            torch.cat([sigma, sigma]))
            x_c, x_u = x2.chunk(2)
            return cfg_combine(x_c, x_u, w)

        return fn
