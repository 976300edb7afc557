"""Pretrained diffusers networks behind mmdistill's denoiser interface.

Every adapter is called as ``net(z, t, y, w=None) -> raw output`` with
continuous time ``t`` in [0, 1] (B,). Pretrained diffusers models are discrete
DDPM models: the adapter owns a :class:`~mmdistill.diffusion.DiscreteSchedule`
built from the folder's scheduler betas (``scheduler/scheduler_config.json``
if present, else the family default) and feeds the network

    timestep = schedule.timestep(t) = t * K - 1,

so the grid point t_k = k / K (alpha_{t_k}^2 = alpha_bar_k) is the model's
0-based index k - 1. The prediction type comes from the same scheduler
config (epsilon / v_prediction / sample -> 'eps' / 'v' / 'x').

Guidance embedding (Meng et al.): ``enable_guidance_embedding()`` adds a
zero-initialised map w -> R^D to the time embedding, so a fresh student
equals the conditional teacher exactly.

- ``DiffusersUNet2D`` / ``DiffusersDiT``: mmdistill's
  :class:`GuidanceEmbedding` (Fourier(w) -> Linear, zero init), added to the
  output of the time (-and-label) embedding modules via forward hooks, so
  the wrapped diffusers module and its ``save_pretrained`` layout are
  unchanged (the embedding is saved next to it by ``tools/export.py``).
- ``DiffusersTextUNet``: the native ``time_cond_proj_dim`` path of
  ``UNet2DConditionModel`` (as diffusers' LCM): ``timestep_cond`` =
  :func:`guidance_features` (w), projected by ``time_embedding.cond_proj``
  (zero-initialised) and added to the sinusoidal time features.
"""
import copy
import json
import os
import os.path as osp

import torch
from torch import nn

from mmdistill.diffusion import DiscreteSchedule
from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from ..denoisers.embeddings import GuidanceEmbedding

#: diffusers ``prediction_type`` -> mmdistill's.
PREDICTION_MAP = {'epsilon': 'eps', 'v_prediction': 'v', 'sample': 'x'}
#: mmdistill's -> diffusers'.
PREDICTION_MAP_INV = {v: k for k, v in PREDICTION_MAP.items()}

#: family defaults when a folder has no scheduler config (DDPM / DiT use the
#: linear schedule of Ho et al., Stable Diffusion the scaled-linear one).
DEFAULT_SCHEDULERS = dict(
    unet2d=dict(num_train_timesteps=1000, beta_schedule='linear',
                beta_start=1e-4, beta_end=0.02, prediction_type='epsilon'),
    dit=dict(num_train_timesteps=1000, beta_schedule='linear',
             beta_start=1e-4, beta_end=0.02, prediction_type='epsilon'),
    sd=dict(num_train_timesteps=1000, beta_schedule='scaled_linear',
            beta_start=0.00085, beta_end=0.012, prediction_type='epsilon'),
)

_DTYPES = {None: None, 'float32': torch.float32, 'fp32': torch.float32,
           'float16': torch.float16, 'fp16': torch.float16,
           'half': torch.float16, 'bfloat16': torch.bfloat16,
           'bf16': torch.bfloat16}


def parse_dtype(dtype):
    """'float16' / 'bfloat16' / 'float32' / None -> torch dtype."""
    if isinstance(dtype, torch.dtype) or dtype is None:
        return dtype
    if dtype not in _DTYPES:
        raise UserError(f'unknown torch_dtype {dtype!r}; use one of '
                        "'float32', 'float16', 'bfloat16'")
    return _DTYPES[dtype]


def find_component(path, subfolder, what):
    """The folder holding ``config.json`` of a diffusers component: either
    ``path/subfolder`` (a full pipeline folder) or ``path`` itself (the
    component saved alone).

    Raises:
        UserError: naming the missing file.
    """
    if not path:
        raise UserError(f'no path given for the {what}; set pretrained= to a '
                        'local diffusers-format folder')
    path = os.fspath(path)
    if not osp.isdir(path):
        raise UserError(f'{what} folder not found: {path} (download the '
                        'diffusers-format model once, e.g. with '
                        '`huggingface-cli download`, and point the config '
                        'at the local folder)')
    for cand in ([osp.join(path, subfolder)] if subfolder else []) + [path]:
        if osp.isfile(osp.join(cand, 'config.json')):
            return cand
    where = osp.join(path, subfolder, 'config.json') if subfolder else \
        osp.join(path, 'config.json')
    raise UserError(f'{what} not found: missing {where} (a diffusers '
                    f'folder needs {subfolder or "the component"}/'
                    'config.json and its weights)')


def load_component(cls, path, subfolder, what, torch_dtype=None):
    """``cls.from_pretrained`` on a local folder, errors as one line."""
    folder = find_component(path, subfolder, what)
    try:
        return cls.from_pretrained(folder, torch_dtype=parse_dtype(
            torch_dtype), local_files_only=True)
    except (OSError, EnvironmentError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else \
            type(e).__name__
        raise UserError(f'cannot load the {what} from {folder}: '
                        f'{first[:200]} (the folder needs config.json and '
                        'diffusion_pytorch_model.safetensors / .bin)') from e


def build_from_config(cls, config):
    """A new diffusers model ``cls`` from config keys, errors as one line."""
    try:
        return cls.from_config(dict(config))
    except (TypeError, ValueError) as e:
        raise UserError(f'cannot build a {cls.__name__} from model_config: '
                        f'{str(e).splitlines()[0][:200]}') from e


def read_scheduler_config(path, family, override=None):
    """The scheduler settings of a diffusers folder: ``scheduler/
    scheduler_config.json`` or ``scheduler_config.json``, updated by
    ``override``; without a folder the family default
    (:data:`DEFAULT_SCHEDULERS`) updated by ``override``.

    Raises:
        UserError: a folder without a scheduler config and no
            ``override`` (its betas and prediction type are unknown), or a
            corrupt one.
    """
    cfg = dict(DEFAULT_SCHEDULERS[family])
    found = not path
    if path:
        for cand in (osp.join(path, 'scheduler', 'scheduler_config.json'),
                     osp.join(path, 'scheduler_config.json'),
                     osp.join(osp.dirname(osp.normpath(path)), 'scheduler',
                              'scheduler_config.json')):
            if osp.isfile(cand):
                with open(cand) as f:
                    try:
                        cfg.update(json.load(f))
                    except json.JSONDecodeError as e:
                        raise UserError(f'corrupt scheduler config {cand}: '
                                        f'{e}') from e
                found = True
                cfg['_source'] = cand
                break
    if not found and not override:
        raise UserError(
            f'{path} has no scheduler/scheduler_config.json (the training '
            'betas and prediction type of the model); copy the scheduler/ '
            'folder of the original model into it, or give them with '
            "denoiser.scheduler=dict(beta_schedule=..., prediction_type=...)")
    cfg.update(override or {})
    return cfg


def schedule_from_config(cfg):
    """(DiscreteSchedule, prediction_type) from a diffusers scheduler config
    dict (keys num_train_timesteps, beta_schedule, beta_start, beta_end,
    trained_betas, prediction_type; ``_source``: the file, for errors)."""
    where = cfg.get('_source', 'the scheduler config')
    pred = cfg.get('prediction_type', 'epsilon')
    if pred not in PREDICTION_MAP:
        raise UserError(f'unsupported prediction_type {pred!r} in {where}; '
                        f'use one of {list(PREDICTION_MAP)}')
    if cfg.get('trained_betas') is not None:
        schedule = DiscreteSchedule(betas=cfg['trained_betas'])
    else:
        kind = cfg.get('beta_schedule', 'linear')
        if kind not in ('linear', 'scaled_linear'):
            raise UserError(f'unsupported beta_schedule {kind!r} in '
                            f"{where}; use 'linear' or 'scaled_linear' (or "
                            'trained_betas)')
        schedule = DiscreteSchedule(
            beta_schedule=kind,
            num_train_timesteps=int(cfg.get('num_train_timesteps', 1000)),
            beta_start=float(cfg.get('beta_start', 1e-4)),
            beta_end=float(cfg.get('beta_end', 0.02)))
    return schedule, PREDICTION_MAP[pred]


def guidance_features(w, dim, scale=1000.0, max_period=10000.0):
    """Fourier features of the guidance weight w (B,) for the native
    ``time_cond_proj_dim`` path, in diffusers' LCM form:

        f(w) = [sin(s w c_k), cos(s w c_k)],  c_k = P^(-k / (dim/2 - 1)),

    k = 0 .. dim/2 - 1, s = 1000, P = 10000 (zero-padded to odd ``dim``).
    ``w`` is Meng's weight, which equals LCM's ``guidance_scale - 1``.
    """
    half = dim // 2
    step = torch.log(torch.tensor(max_period)) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    args = (w.float() * scale)[:, None] * freqs.to(w.device)[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class _DiffusersDenoiser(nn.Module):
    """Common part: the wrapped ``self.model``, the discrete schedule, the
    prediction type, optional half precision and gradient checkpointing.

    Args:
        pretrained (str): local diffusers folder (a pipeline folder with
            sub-folders, or the component folder itself).
        subfolder (str): component sub-folder ('unet', 'transformer').
        torch_dtype (str): load the weights in 'float16' / 'bfloat16'
            (a frozen teacher in half precision); inputs are cast to it and
            outputs back to float32.
        gradient_checkpointing (bool): diffusers'
            ``enable_gradient_checkpointing()`` (a large student).
        scheduler (dict): override the scheduler config read from the
            folder (diffusers keys).
        model (nn.Module): an already built diffusers model instead of
            ``pretrained`` (used by the export pipeline).
        guidance_embed (bool): build the w-embedding now (a student).
        model_config (dict): build a new, randomly initialised network from
            these diffusers config keys instead of loading ``pretrained``
            (training a teacher in the diffusers format).
    """

    family = None
    subfolder_default = None
    model_cls_name = None

    def __init__(self, pretrained=None, subfolder=None, torch_dtype=None,
                 gradient_checkpointing=False, scheduler=None, model=None,
                 guidance_embed=False, model_config=None):
        super().__init__()
        import diffusers
        self._init_guidance()
        self.pretrained = pretrained
        if model is None and model_config is not None:
            if pretrained is not None:
                raise UserError('give either pretrained= (a folder) or '
                                'model_config= (a new network), not both')
            model = build_from_config(
                getattr(diffusers, self.model_cls_name), model_config)
            self.init_new_network(model)
        if model is None:
            model = load_component(
                getattr(diffusers, self.model_cls_name), pretrained,
                subfolder or self.subfolder_default,
                f'{self.model_cls_name} ({self.family} teacher)', torch_dtype)
        self.model = model
        sched = read_scheduler_config(pretrained, self.family, scheduler)
        self.schedule, self.prediction_type = schedule_from_config(sched)
        sched.pop('_source', None)
        self.scheduler_config = sched
        self._setup()
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()
        if guidance_embed:
            self.enable_guidance_embedding()

    def _init_guidance(self):
        pass

    @staticmethod
    def init_new_network(model):
        """Initialise a network built from ``model_config`` (diffusers'
        own initialisation by default)."""

    def _setup(self):
        """Family-specific checks and attributes (num_classes, ...)."""

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    def timestep(self, t):
        """Continuous t in [0, 1] -> the pretrained model's timestep
        t * K - 1 (float; equal to the integer index on the grid)."""
        return self.schedule.timestep(t.float())

    def enable_gradient_checkpointing(self):
        self.model.enable_gradient_checkpointing()
        return self

    def _to_float32(self):
        if self.dtype in (torch.float16, torch.bfloat16):
            self.model.float()

    def _cast_in(self, z):
        return z.to(self.dtype)

    @staticmethod
    def _cast_out(out, z):
        return out.to(z.dtype)


class _HookedGuidanceMixin:
    """Meng's w-embedding added to the outputs of ``self._embed_modules()``
    (the model's time or time-and-label embeddings) by forward hooks."""

    def _init_guidance(self):
        self.guidance_emb = None
        self._w_emb = None
        self._hooks = []

    def enable_guidance_embedding(self, feat_dim=256):
        """Add the zero-initialised GuidanceEmbedding (idempotent). The
        network becomes a student, trained in float32 (a teacher loaded in
        half precision is copied up)."""
        self._to_float32()
        if self.guidance_emb is None:
            p = next(self.model.parameters())
            self.guidance_emb = GuidanceEmbedding(
                feat_dim, self.embed_dim).to(p.new_empty((),
                                                         dtype=torch.float32))
            self._register_hooks()
        return self

    def _register_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = [m.register_forward_hook(self._add_guidance)
                       for m in self._embed_modules()]

    def _add_guidance(self, module, inputs, output):
        if self._w_emb is None:
            return output
        return output + self._w_emb.to(output.dtype)

    def _set_w(self, w, t):
        # kept after forward: gradient checkpointing re-runs the hooks
        if self.guidance_emb is None:
            self._w_emb = None
            return
        if w is None:
            w = torch.zeros_like(t, dtype=torch.float32)
        self._w_emb = self.guidance_emb(w.float())

    def __deepcopy__(self, memo):
        # the hooks and their handles belong to ``self``: the copy drops the
        # copied ones and registers its own
        cls = self.__class__
        new = cls.__new__(cls)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k in ('_hooks', '_w_emb'):
                continue
            object.__setattr__(new, k, copy.deepcopy(v, memo))
        new._hooks, new._w_emb = [], None
        for m in new._embed_modules():
            for key, fn in list(m._forward_hooks.items()):
                if getattr(fn, '__func__', None) is cls._add_guidance:
                    del m._forward_hooks[key]
        if new.guidance_emb is not None:
            new._register_hooks()
        return new


@MODELS.register_module()
class DiffusersUNet2D(_HookedGuidanceMixin, _DiffusersDenoiser):
    """diffusers ``UNet2DModel`` (pixel space), class-conditional through
    ``num_class_embeds`` (the null class is ``num_classes =
    num_class_embeds - 1``) or unconditional (``num_classes = 0``, y is
    ignored).

    ``forward(z, t, y, w=None) = UNet(z, t K - 1, class_labels=y)``, plus the
    guidance embedding on ``time_embedding``'s output once enabled.
    """

    family = 'unet2d'
    subfolder_default = 'unet'
    model_cls_name = 'UNet2DModel'

    def _setup(self):
        n = self.model.config.num_class_embeds
        if n is not None and self.model.config.class_embed_type is not None:
            raise UserError('UNet2DModel with class_embed_type='
                            f'{self.model.config.class_embed_type!r} is not '
                            'supported; use num_class_embeds (an embedding '
                            'table with a null class)')
        self.num_classes = int(n) - 1 if n else 0
        self.in_channels = self.model.config.in_channels
        self.embed_dim = self.model.time_embedding.linear_2.out_features

    def _embed_modules(self):
        return [self.model.time_embedding]

    def forward(self, z, t, y=None, w=None):
        self._set_w(w, t)
        labels = None
        if self.num_classes > 0:
            labels = y if y is not None else torch.full_like(
                t, self.num_classes, dtype=torch.long)
        out = self.model(self._cast_in(z), self.timestep(t),
                         class_labels=labels).sample
        return self._cast_out(out, z)


@MODELS.register_module()
class DiffusersDiT(_HookedGuidanceMixin, _DiffusersDenoiser):
    """diffusers ``DiTTransformer2DModel`` (class-conditional, latent
    space). The null class is ``num_classes = num_embeds_ada_norm`` (the
    extra row of the label table). DiT-XL/2 predicts eps and a learned
    variance (``out_channels = 2 C``): the output is the first C channels.

    The label dropout built into diffusers' ``LabelEmbedding`` is switched
    off (conditioning is dropped by the distiller, explicitly). The guidance
    embedding is added to the time-and-label conditioning of every block
    (each block of the diffusers port holds its own copy of the embedder).

    Timestep (one rule for distillation and MGD3 synthesis): continuous t
    is fed as the float timestep

        timestep(t) = t * K - 1    (not rounded, not clamped),

    the same map as the other adapters. It is not rounded because students
    are trained at continuous t ~ U[t_min, 1]: a rounded timestep would make
    the teacher piecewise constant in t while alpha_t, sigma_t (and so
    x_hat0 = (z - sigma_t eps_hat) / alpha_t) vary continuously, i.e. eps
    would be predicted for a noise level other than the one of z_t. DiT's
    sinusoidal timestep embedding is defined for any real timestep. On a
    sampling grid t_i = i / N with N dividing K (DDPM / DDIM / MGD3 with
    N = 50, K = 1000) t * K - 1 is the integer index i K / N - 1 anyway
    (exactly in float32 for every N <= 200 dividing K = 1000, the values
    diffusers' schedulers use; within 3.1e-5 of it for N = 250 .. 1000), so
    rounding would change nothing there.
    """

    family = 'dit'
    subfolder_default = 'transformer'
    model_cls_name = 'DiTTransformer2DModel'

    @staticmethod
    def init_new_network(model):
        """DiT's initialisation (Peebles & Xie, section 3.1, adaLN-Zero):
        Xavier-uniform linear layers and patch projection with zero biases,
        N(0, 0.02) label table and timestep MLP, and zero adaLN modulation
        in every block and in the final layer, plus a zero output
        projection, so that every block starts as the identity and the
        network's first output is 0."""
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        proj = model.pos_embed.proj
        nn.init.xavier_uniform_(proj.weight.view(proj.weight.shape[0], -1))
        nn.init.zeros_(proj.bias)
        for block in model.transformer_blocks:
            emb = block.norm1.emb
            nn.init.normal_(emb.class_embedder.embedding_table.weight,
                            std=0.02)
            nn.init.normal_(emb.timestep_embedder.linear_1.weight, std=0.02)
            nn.init.normal_(emb.timestep_embedder.linear_2.weight, std=0.02)
            nn.init.zeros_(block.norm1.linear.weight)
            nn.init.zeros_(block.norm1.linear.bias)
        for layer in (model.proj_out_1, model.proj_out_2):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _setup(self):
        cfg = self.model.config
        self.num_classes = int(cfg.num_embeds_ada_norm)
        embedders = [m.class_embedder for m in self._embed_modules()]
        if any(e.embedding_table.num_embeddings <= self.num_classes
               for e in embedders):
            raise UserError('this DiT has no null-class embedding (trained '
                            'with class_dropout_prob=0): classifier-free '
                            'guidance needs one')
        for e in embedders:
            e.dropout_prob = 0.0
        self.in_channels = cfg.in_channels
        self.embed_dim = self.model.inner_dim

    def _embed_modules(self):
        return [b.norm1.emb for b in self.model.transformer_blocks]

    def forward(self, z, t, y=None, w=None):
        self._set_w(w, t)
        if y is None:
            y = torch.full_like(t, self.num_classes, dtype=torch.long)
        out = self.model(self._cast_in(z), timestep=self.timestep(t),
                         class_labels=y).sample
        return self._cast_out(out[:, :self.in_channels], z)


@MODELS.register_module()
class DiffusersTextUNet(_DiffusersDenoiser):
    """diffusers ``UNet2DConditionModel`` for text-to-image (Stable
    Diffusion style). The condition ``y`` is a tensor of prompt embeddings
    (B, L, D) from the CLIP text encoder, passed as
    ``encoder_hidden_states``; the null condition is the empty prompt's
    embedding (see :class:`mmdistill.models.adapters.TextCFGDiffusion`).

    Guidance embedding: the native ``time_cond_proj_dim`` path (LCM).
    :meth:`enable_guidance_embedding` rebuilds the UNet with
    ``time_cond_proj_dim = cond_dim``, copies every teacher weight and
    zero-initialises ``time_embedding.cond_proj`` (a bias-free linear
    layer), so the fresh student equals the teacher; ``w`` enters as
    ``timestep_cond = guidance_features(w)``.
    """

    family = 'sd'
    subfolder_default = 'unet'
    model_cls_name = 'UNet2DConditionModel'
    num_classes = 0
    condition_type = 'text'

    def __init__(self, *args, guidance_cond_dim=256, **kwargs):
        self._cond_dim = guidance_cond_dim
        super().__init__(*args, **kwargs)

    def _setup(self):
        self.guidance_cond_dim = self._cond_dim
        self.in_channels = self.model.config.in_channels

    @property
    def guidance_enabled(self):
        return self.model.config.time_cond_proj_dim is not None

    def enable_guidance_embedding(self, cond_dim=None):
        """Rebuild with ``time_cond_proj_dim`` and a zero ``cond_proj``
        (in float32: the network becomes a trained student)."""
        self._to_float32()
        if self.guidance_enabled:
            return self
        from diffusers import UNet2DConditionModel
        old = self.model
        p = next(old.parameters())
        cfg = dict(old.config)
        cfg['time_cond_proj_dim'] = int(cond_dim or self.guidance_cond_dim)
        new = UNet2DConditionModel.from_config(cfg)
        res = new.load_state_dict(old.state_dict(), strict=False)
        extra = set(res.missing_keys) - {'time_embedding.cond_proj.weight'}
        if extra or res.unexpected_keys:
            raise RuntimeError(f'unexpected keys rebuilding the UNet: '
                               f'{sorted(extra)} {res.unexpected_keys}')
        nn.init.zeros_(new.time_embedding.cond_proj.weight)
        if getattr(old, 'is_gradient_checkpointing', False):
            new.enable_gradient_checkpointing()
        new.train(old.training)
        self.model = new.to(p.device, p.dtype)
        return self

    def forward(self, z, t, y, w=None):
        cond = None
        if self.guidance_enabled:
            if w is None:
                w = torch.zeros_like(t)
            cond = guidance_features(
                w, self.model.config.time_cond_proj_dim).to(self.dtype)
        out = self.model(self._cast_in(z), self.timestep(t),
                         encoder_hidden_states=y.to(self.dtype),
                         timestep_cond=cond).sample
        return self._cast_out(out, z)
