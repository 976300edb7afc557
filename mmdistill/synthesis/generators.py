"""The generator of dataset synthesis: a built CFG model behind the interface
of mode-guided sampling.

MGD3 samples through the same model classes as distillation: the
:class:`~mmdistill.models.CFGDiffusion` teacher (its network, schedule and
``guided_x_fn``) and, in latent space, its
:class:`~mmdistill.models.adapters.LatentDataPreprocessor` (the
:class:`~mmdistill.models.adapters.VAEWrapper`). A generator exposes, in the
space the diffusion runs in ("diffusion space": pixels or a VAE latent):

- ``schedule`` (``alpha_sigma(t)``), ``sample_shape`` (C, H, W),
  ``num_classes`` (label ``num_classes`` is the null class), ``device``;
- ``encode(images) -> z0`` (images (B, C, H, W) in [-1, 1]);
- ``decode(z0) -> images`` in [-1, 1];
- ``x_fn(labels, guidance) -> x_fn(z, t)``: the CFG clean estimate
  (1 + w) x_hat_c - w x_hat_u (Meng's w; diffusers' guidance_scale = 1 + w).

:class:`CFGModelGenerator` is the one implementation; the registered names
:class:`PixelTeacherGenerator` and :class:`DiTLatentGenerator` of existing
configs are constructors of it.
"""
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from mmdistill.registry import MODELS, SYNTHESIS
from mmdistill.utils import (UserError, load_into, load_state_dict,
                             sub_state_dict)

XFn = Callable[[Tensor, Tensor], Tensor]


def _device(device: Union[str, torch.device, None]) -> torch.device:
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)


def _plain(cfg) -> dict:
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)


def resolve_model_config(model: Union[str, dict],
                         checkpoint: Optional[str] = None):
    """The CFG model config and its checkpoint from a ``model`` argument.

    Args:
        model: a config file whose ``model`` is the CFG model, or the model
            dict itself. A distiller config (a ``model`` with a ``teacher``
            dict, e.g. ``GuidanceDistiller``) stands for its teacher, whose
            checkpoint is then ``teacher_ckpt`` unless ``checkpoint`` is
            given.
        checkpoint: the weights; None keeps the distiller's
            ``teacher_ckpt`` (or none).

    Returns:
        tuple[dict, str | None]: (model config, checkpoint).
    """
    if isinstance(model, str):
        from mmdistill.utils.config import load_config
        cfg = load_config(model)
        if 'model' not in cfg:
            raise UserError(f'{model} defines no model')
        model = cfg.model
    model = _plain(model)
    if isinstance(model.get('teacher'), dict):
        if checkpoint is None:
            checkpoint = model.get('teacher_ckpt')
        model = _plain(model['teacher'])
    return model, checkpoint


def check_sample_model(sample_model: str) -> None:
    if sample_model not in ('ema', 'orig'):
        raise UserError(f"sample_model must be 'ema' or 'orig', got "
                        f'{sample_model!r}')


@SYNTHESIS.register_module()
class CFGModelGenerator:
    """A built CFG model (:class:`~mmdistill.models.CFGDiffusion` or a
    subclass, pixel or latent space) as the generator of MGD3.

    With w the guidance weight (Meng's convention) and y' the model label of
    data-set class y (``class_labels``):

        x_fn(z, t) = (1 + w) x_hat(z, t, y') - w x_hat(z, t, null),

    i.e. ``model.guided_x_fn(y', w, sample_model)``. The diffusion space is
    the model's: ``encode`` / ``decode`` are the identity / clamp(-1, 1)
    for a pixel model and, for a latent model (a data preprocessor with
    ``encode`` / ``decode``, the VAE with scaling s and shift b),

        z = s * (E[q(z | x)] - b),    x = clamp(D(z / s + b), -1, 1).

    Args:
        model: config file whose ``model`` is the CFG model, or the model
            dict (see :func:`resolve_model_config`; a distiller config
            means its teacher).
        checkpoint: weights (mmengine checkpoint or state dict with
            ``net_ema.*`` / ``net.*``); None for a pretrained diffusers
            teacher whose weights come from its folder.
        sample_model: 'ema' (``net_ema.*`` if present, else ``net.*``) or
            'orig' (the raw ``net.*`` weights).
        device: 'auto', 'cpu' or 'cuda'.
        class_labels: model label of each data-set class (e.g. ImageNette
            folder i -> ImageNet index); None: the identity.
        num_classes: the model's number of real classes, checked against
            the built model; None: the model's.
        vae_batch_size: images per VAE call in ``encode`` / ``decode``
            (latent models).
    """

    def __init__(self, model: Union[str, dict],
                 checkpoint: Optional[str] = None,
                 sample_model: str = 'ema', device: str = 'auto',
                 class_labels: Optional[Sequence[int]] = None,
                 num_classes: Optional[int] = None,
                 vae_batch_size: int = 32) -> None:
        from mmdistill import register_all_modules
        register_all_modules(init_default_scope=False)
        check_sample_model(sample_model)
        model_cfg, checkpoint = resolve_model_config(model, checkpoint)
        self.model = MODELS.build(model_cfg)
        if checkpoint is not None:
            self._load(checkpoint, sample_model)
        elif getattr(self.model.net, 'pretrained', None) is None:
            raise UserError(f'no checkpoint for the {model_cfg.get("type")} '
                            'model: set checkpoint= to its weights (only '
                            'pretrained diffusers teachers load their own)')
        self._attach(sample_model, device, class_labels, num_classes,
                     vae_batch_size)

    def _attach(self, sample_model, device, class_labels, num_classes,
                vae_batch_size) -> None:
        """Move the built ``self.model`` to the device and read what
        sampling needs from it (schedule, shape, classes, VAE)."""
        self.sample_model = sample_model
        self.device = _device(device)
        self.model.to(self.device).eval().requires_grad_(False)
        self.schedule = self.model.schedule
        self.sample_shape = tuple(self.model.image_shape)
        self.num_classes = int(self.model.num_classes)
        if num_classes is not None and int(num_classes) != self.num_classes:
            raise UserError(f'num_classes={num_classes} does not match the '
                            f'model ({self.num_classes} classes)')
        self.class_labels = None if class_labels is None else torch.as_tensor(
            list(class_labels), dtype=torch.long)
        if self.class_labels is not None and (
                self.class_labels.min() < 0
                or self.class_labels.max() >= self.num_classes):
            raise UserError(f'class_labels must be in [0, {self.num_classes})')
        pre = self.model.data_preprocessor
        self.latent = callable(getattr(pre, 'encode', None)) and callable(
            getattr(pre, 'decode', None))
        self.vae_batch_size = int(vae_batch_size)

    def _load(self, checkpoint: str, sample_model: str) -> None:
        state = load_state_dict(checkpoint)
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

    def map_labels(self, labels: Tensor) -> Tensor:
        """Data-set classes -> model labels, on the model's device."""
        labels = torch.as_tensor(labels, dtype=torch.long)
        if self.class_labels is not None:
            labels = self.class_labels[labels.cpu()]
        return labels.to(self.device)

    def _chunked(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        return torch.cat([fn(c.to(self.device)).float()
                          for c in x.split(self.vae_batch_size)])

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] -> diffusion space: the images themselves
        (pixel model) or z = s * (E[q(z | x)] - b) (latent model)."""
        if not self.latent:
            return images.to(self.device)
        return self._chunked(self.model.data_preprocessor.encode, images)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Diffusion space -> images in [-1, 1]: clamp(z, -1, 1) (pixel
        model) or clamp(D(z / s + b), -1, 1) (latent model)."""
        if not self.latent:
            return z.clamp(-1, 1)
        return self._chunked(self.model.data_preprocessor.decode, z)

    def x_fn(self, labels: Tensor, guidance: float) -> XFn:
        """The guided clean estimate x_fn(z, t) = (1 + w) x_hat_c -
        w x_hat_u for data-set classes ``labels`` (B,) and w = ``guidance``
        (the same w for every sample)."""
        labels = self.map_labels(labels)
        w = torch.as_tensor(guidance, dtype=torch.float32,
                            device=self.device).expand(len(labels))
        return self.model.guided_x_fn(labels, w, self.sample_model)


@SYNTHESIS.register_module()
class PixelTeacherGenerator(CFGModelGenerator):
    """A pixel-space CFG teacher from a model config and a checkpoint
    (``net_ema.*`` preferred over ``net.*``): :class:`CFGModelGenerator`
    with ``model=model_config``.

    Args:
        model_config: config file whose ``model`` is the teacher.
        checkpoint: teacher weights (mmengine checkpoint or state dict).
        sample_model: 'ema' or 'orig'.
        device: 'auto', 'cpu' or 'cuda'.
        **kwargs: further :class:`CFGModelGenerator` arguments.
    """

    def __init__(self, model_config: Union[str, dict], checkpoint: str,
                 sample_model: str = 'ema', device: str = 'auto',
                 **kwargs) -> None:
        super().__init__(model_config, checkpoint, sample_model=sample_model,
                         device=device, **kwargs)


def dit_latent_model(transformer: str, vae: str,
                     num_classes: Optional[int] = None,
                     scheduler: Optional[dict] = None,
                     dtype: str = 'float32') -> dict:
    """The model dict of a latent DiT teacher, as in the distillation
    configs: a ``DiffusersCFGDiffusion`` whose denoiser is a
    ``DiffusersDiT`` on ``transformer`` and whose data preprocessor is a
    ``LatentDataPreprocessor`` on ``vae``, both loaded in ``dtype``."""
    model = dict(
        type='DiffusersCFGDiffusion',
        denoiser=dict(type='DiffusersDiT', pretrained=transformer,
                      torch_dtype=dtype, scheduler=scheduler),
        data_preprocessor=dict(type='LatentDataPreprocessor', vae=dict(
            pretrained=vae, subfolder='vae', torch_dtype=dtype)))
    if num_classes is not None:
        model['num_classes'] = int(num_classes)
    return model


@SYNTHESIS.register_module()
class DiTLatentGenerator(CFGModelGenerator):
    """A class-conditional diffusers ``DiTTransformer2DModel`` in the latent
    space of its ``AutoencoderKL``, both from local folders:
    :class:`CFGModelGenerator` on :func:`dit_latent_model` (the teacher of
    ``configs/_base_/models/dit_xl2_256.py``).

    Time, eps and CFG are those of the adapter and the teacher: the DDPM
    schedule of the folder's scheduler config (K steps; continuous t is the
    network timestep t * K - 1, see ``DiffusersDiT``), the first C of the
    DiT's 2C output channels are eps, x_hat0 = (z - sigma_t eps_hat) /
    alpha_t, and CFG combines x_hat0 (equivalent to eps-CFG: the map is
    affine). Latents: z0 = s * (VAE latent mean - b) (``VAEWrapper``).

    Args:
        transformer: folder of the DiT (``config.json`` + weights; a
            pipeline folder with ``transformer/`` works too).
        vae: folder of the AutoencoderKL (or a pipeline folder with
            ``vae/``).
        num_classes: class count; default the DiT's ``num_embeds_ada_norm``
            (1000); the null label equals it.
        class_labels: DiT label of each data-set class (e.g. ImageNette
            folder i -> ImageNet index); None: identity.
        beta_schedule, beta_start, beta_end, num_train_timesteps: override
            the training schedule read from the folder's scheduler config
            (default: that config, else linear 1e-4 .. 0.02, K = 1000).
        device: 'auto', 'cpu' or 'cuda'.
        dtype: 'float32', 'float16' or 'bfloat16' for the networks.
        vae_batch_size: images per VAE call.
    """

    def __init__(self, transformer: str, vae: str,
                 num_classes: Optional[int] = None,
                 class_labels: Optional[Sequence[int]] = None,
                 beta_schedule: Optional[str] = None,
                 beta_start: Optional[float] = None,
                 beta_end: Optional[float] = None,
                 num_train_timesteps: Optional[int] = None,
                 device: str = 'auto', dtype: str = 'float32',
                 vae_batch_size: int = 32) -> None:
        scheduler = {k: v for k, v in dict(
            beta_schedule=beta_schedule, beta_start=beta_start,
            beta_end=beta_end,
            num_train_timesteps=num_train_timesteps).items()
            if v is not None}
        super().__init__(
            dit_latent_model(transformer, vae, num_classes, scheduler or None,
                             dtype),
            device=device, class_labels=class_labels,
            vae_batch_size=vae_batch_size)


@SYNTHESIS.register_module()
class DistilledStudentGenerator(CFGModelGenerator):
    """A distilled student (a stage-1 or stage-2 checkpoint, e.g.
    ``student_4step.pth``) as the generator of MGD3: one network
    evaluation per step instead of the teacher's two,

        x_fn(z, t) = x_S(z, t, y', w),

    the w-conditioned student's clean estimate (``guided_x_fn`` of the
    distiller). Sampling runs on the student's own grid: the synthesis
    config sets ``steps`` to the student's N and ``sampler='ddim'`` (the
    sampler it was distilled for); mode guidance and stop guidance act on
    its steps as on the teacher's (``mmdistill.synthesis.guidance``). The
    diffusion space (pixels or the VAE latent) is the distiller's.

    Args:
        checkpoint: the student file (``net.*``, ``num_steps``).
        config: the config it was trained with; None: the single config
            dumped beside ``checkpoint`` (its work dir).
        sample_model: 'ema' or 'orig' (students of stage 2 have no EMA).
        device: 'auto', 'cpu' or 'cuda'.
        class_labels: model label of each data-set class; None: identity.
        num_classes: checked against the student's class count.
        vae_batch_size: images per VAE call.
    """

    def __init__(self, checkpoint: str, config: Optional[str] = None,
                 sample_model: str = 'ema', device: str = 'auto',
                 class_labels: Optional[Sequence[int]] = None,
                 num_classes: Optional[int] = None,
                 vae_batch_size: int = 32) -> None:
        from mmdistill import register_all_modules
        from mmdistill.utils import load_student_checkpoint
        from mmdistill.utils.config import (config_beside, load_config,
                                            without_teacher_files)
        register_all_modules(init_default_scope=False)
        check_sample_model(sample_model)
        if config is None:
            config = config_beside(checkpoint, 'set generator.config to the '
                                   'config it was trained with')
        # sampling needs only the student
        model_cfg = without_teacher_files(_plain(load_config(config).model))
        self.model = MODELS.build(model_cfg)
        load_student_checkpoint(self.model, checkpoint)
        n = getattr(self.model, 'num_steps', None)
        self.num_steps = int(n) if n is not None else None
        self._attach(sample_model, device, class_labels, num_classes,
                     vae_batch_size)
