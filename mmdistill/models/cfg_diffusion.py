"""The classifier-free-guided diffusion model (the teacher)."""
import copy
from typing import Callable, Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmdistill.diffusion import (PREDICTION_TYPES, build_schedule, cfg_combine,
                                 to_x)
from mmdistill.diffusion.samplers import SAMPLERS
from mmdistill.registry import MODELS
from .conditions import ClassLabelConditions, build_condition_provider
from .sampling import GuidedSamplingMixin


def build_preprocessor(cfg: Union[dict, nn.Module]) -> nn.Module:
    """Build a data preprocessor from this package's registry (mmengine's
    BaseModel would look in its root registry only); a built one is kept."""
    return MODELS.build(cfg) if isinstance(cfg, dict) else cfg


def check_default_sample(default_sample: dict) -> None:
    """Fail at build time (not after training) on a bad ``default_sample``:
    unknown sampler or non-positive step count."""
    sampler = dict(default_sample).get('sampler', 'ddim')
    if sampler not in SAMPLERS:
        raise ValueError(f'unknown sampler {sampler!r} in default_sample; '
                         f'use one of {tuple(SAMPLERS)}')
    steps = dict(default_sample).get('steps', 64)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f'default_sample.steps must be a positive integer, '
                         f'got {steps!r}')


class EMAMixin:
    """Exponential moving average of ``self.net`` kept in ``self.net_ema``:

        theta_ema <- d_n * theta_ema + (1 - d_n) * theta   (after update n)

    with the warm-up d_n = min(d, (1 + n) / (10 + n)) (``warmup=True``, the
    default): without it the random initial weights keep a share d^n of the
    average (37 % after 1000 updates at d = 0.999), which ruins samples of a
    short run.
    """

    def _init_ema(self, ema: Optional[dict]) -> None:
        """Create ``net_ema`` (a copy of ``net``; None when ``ema`` is None)
        and the ``num_updates`` buffer. Frozen parameters of ``net`` (a
        LoRA student's base weights) are not copied: the EMA holds the same
        tensors and averages only what trains."""
        self.ema_cfg = {
            **dict(decay=0.999, start_iter=0, warmup=True),
            **(ema or {})
        }
        if not 0 <= float(self.ema_cfg['decay']) <= 1:
            raise ValueError(f'ema.decay must be in [0, 1], got '
                             f"{self.ema_cfg['decay']}")
        self.ema_enabled = ema is not None
        self.net_ema = None
        if self.ema_enabled:
            frozen = {id(p): p for p in self.net.parameters()
                      if not p.requires_grad}
            self.net_ema = copy.deepcopy(self.net, frozen).requires_grad_(
                False)
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))

    def host_value(self, name: str) -> Union[int, float]:
        """``buffer.item()`` of a scalar buffer without a host-device sync per
        call: the value is re-read only when the tensor was replaced or
        modified in place since the last read (``Tensor._version``), e.g.
        by ``load_state_dict`` or a stage change."""
        buf = getattr(self, name)
        key = (id(buf), buf._version)
        cached = self.__dict__.get(f'_host_{name}')
        if cached is None or cached[0] != key:
            cached = (key, buf.item())
            self.__dict__[f'_host_{name}'] = cached
        return cached[1]

    @torch.no_grad()
    def update_ema(self) -> None:
        """One EMA update of ``net_ema`` from ``net``; counts the update."""
        n = self.host_value('num_updates') + 1
        self.num_updates += 1
        # the in-place add bumps the version: record the value known here
        self.__dict__['_host_num_updates'] = (
            (id(self.num_updates), self.num_updates._version), n)
        if not self.ema_enabled:
            return
        d = float(self.ema_cfg['decay']) if n > self.ema_cfg[
            'start_iter'] else 0.0
        if self.ema_cfg['warmup']:
            d = min(d, (1 + n) / (10 + n))
        # one fused call over all tensors instead of a Python loop (pairs
        # as zip() makes them)
        # (a tensor both hold, a LoRA student's frozen base, is skipped)
        pairs = [(e, p.detach()) for e, p in zip(self.net_ema.parameters(),
                                                 self.net.parameters())
                 if e is not p]
        if pairs:
            ema_p, src_p = map(list, zip(*pairs))
            torch._foreach_lerp_(ema_p, src_p, 1 - d)
        ema_b, src_b = list(self.net_ema.buffers()), list(self.net.buffers())
        k = min(len(ema_b), len(src_b))
        if k:
            torch._foreach_copy_(ema_b[:k], src_b[:k])

    def pick_net(self, sample_model: str = 'ema') -> nn.Module:
        """``net_ema`` for 'ema' (``net`` without EMA), ``net`` for 'orig'."""
        if sample_model not in ('ema', 'orig'):
            raise ValueError(f"sample_model must be 'ema' or 'orig', got "
                             f'{sample_model!r}')
        if sample_model == 'ema' and self.net_ema is not None:
            return self.net_ema
        return self.net

    def ddp_ignored_names(self) -> list:
        """EMA weights are updated identically on every rank from the
        synchronised weights: DDP need not broadcast them."""
        if self.net_ema is None:
            return []
        return [f'net_ema.{n}' for n, _ in self.net_ema.named_parameters()] \
            + [f'net_ema.{n}' for n, _ in self.net_ema.named_buffers()]

    def after_train_update(self) -> None:
        """Called by ``train_step`` (and the DDP wrapper) after each optimizer
        step."""
        self.update_ema()

    def train_step(self, data: dict, optim_wrapper) -> Dict[str, Tensor]:
        """mmengine's ``train_step``, then the EMA update."""
        log_vars = super().train_step(data, optim_wrapper)
        self.after_train_update()
        return log_vars


@MODELS.register_module()
class CFGDiffusion(EMAMixin, GuidedSamplingMixin, BaseModel):
    """A class-conditional diffusion model trained for classifier-free
    guidance (Ho & Salimans): the condition is dropped to the null class
    with probability ``p_uncond``, so one network gives x_c and x_u.

    Training loss: omega(lambda_t) ||x_hat(z_t) - x||^2 with
    t ~ U(0, 1), z_t = alpha_t x + sigma_t eps, computed in the network's
    parameterisation.

    Args:
        denoiser (dict): network config (denoiser interface
            ``net(z, t, y, w=None)``).
        num_classes (int): real classes; label ``num_classes`` is null.
        image_shape (tuple): (C, H, W) of samples.
        schedule (dict): noise schedule, e.g. ``dict(type='cosine')``.
        prediction_type (str): 'v' (default), 'eps' or 'x'.
        loss (dict): loss config (``GuidedOutputL2Loss``).
        p_uncond (float): condition dropout probability.
        ema (dict | None): ``dict(decay=0.999, start_iter=0)``; None: no EMA.
        default_sample (dict): defaults of :meth:`sample`.
        t_min (float): t ~ U[t_min, 1].
        data_preprocessor (dict | nn.Module): the data preprocessor.
        init_cfg (dict | None): mmengine's weight initialisation config.
    """

    def __init__(self, denoiser: dict, num_classes: int,
                 image_shape: Sequence[int],
                 schedule: Union[dict, object] = dict(type='cosine'),
                 prediction_type: str = 'v',
                 loss: dict = dict(type='GuidedOutputL2Loss',
                                   weighting='v_mse'),
                 p_uncond: float = 0.1, ema: Optional[dict] = dict(
                     decay=0.999),
                 default_sample: dict = dict(steps=64, guidance=2.0,
                                             sampler='ddim'),
                 t_min: float = 1e-4,
                 data_preprocessor: Union[dict, nn.Module] = dict(
                     type='DiffusionDataPreprocessor'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f'prediction_type must be one of '
                             f'{PREDICTION_TYPES}, got {prediction_type!r}')
        if not 0 <= p_uncond <= 1:
            raise ValueError(f'p_uncond must be in [0, 1], got {p_uncond}')
        check_default_sample(default_sample)
        self.net = MODELS.build(denoiser)
        self.num_classes = num_classes
        self.image_shape = tuple(image_shape)
        self.schedule = build_schedule(schedule)
        self.prediction_type = prediction_type
        self.loss_fn = MODELS.build(loss)
        self.p_uncond, self.t_min = p_uncond, t_min
        self.default_sample = dict(default_sample)
        self._init_ema(ema)

    # -- the math of one training example ---------------------------------
    def x_hat(self, net: nn.Module, z: Tensor, t: Tensor, y: Tensor,
              w: Optional[Tensor] = None) -> Tensor:
        """x_hat = to_x(net(z, t, y, w)) in the model's parameterisation."""
        out = net(z, t, y) if w is None else net(z, t, y, w)
        return to_x(out, z, *self.schedule.alpha_sigma(t),
                    self.prediction_type)

    def condition_provider(self) -> ClassLabelConditions:
        """The provider of this model's conditions (null, random, other):
        class labels, label ``num_classes`` being null. Text models
        override it."""
        return build_condition_provider('class', num_classes=self.num_classes)

    def null_condition(self, y: Tensor) -> Tensor:
        """The unconditional input for conditions ``y``: the null class
        ``num_classes`` (text models: the empty prompt's embedding)."""
        return self.condition_provider().null(y)

    def random_condition(self, y: Tensor,
                         generator: Optional[torch.Generator] = None
                         ) -> Tensor:
        """A random real condition per sample, shaped like ``y`` (uniform
        class, possibly ``y`` itself; text models: another caption of the
        batch)."""
        return self.condition_provider().random(y, generator)

    def guided_x_fn(self, labels: Tensor, w: Tensor,
                    sample_model: str = 'ema',
                    net: Optional[nn.Module] = None
                    ) -> Callable[[Tensor, Tensor], Tensor]:
        """x_fn(z, t) = (1 + w) x_hat(z, t, y) - w x_hat(z, t, null), with the
        conditional and unconditional branch in one batched call."""
        net = net if net is not None else self.pick_net(sample_model)
        # decided once per sampling run, not per step: bool(tensor) is a
        # host-device synchronisation
        if not bool((torch.as_tensor(w) != 0).any()):
            return lambda z, t: self.x_hat(net, z, t, labels)
        labels2 = torch.cat([labels, self.null_condition(labels)])

        def x_fn(z, t):
            x2 = self.x_hat(net, torch.cat([z, z]), torch.cat([t, t]),
                            labels2)
            x_c, x_u = x2.chunk(2)
            return cfg_combine(x_c, x_u, w)

        return x_fn

    def loss(self, x: Tensor, y: Tensor) -> Dict[str, Tensor]:
        """The CFG training loss of one batch (see the class docstring)."""
        b = x.shape[0]
        t = torch.rand(b, device=x.device) * (1 - self.t_min) + self.t_min
        eps = torch.randn_like(x)
        alpha, sigma = self.schedule.alpha_sigma(t)
        z = alpha.view(-1, 1, 1, 1) * x + sigma.view(-1, 1, 1, 1) * eps
        drop = torch.rand(b, device=x.device) < self.p_uncond
        drop = drop.view((b, ) + (1, ) * (y.ndim - 1))
        y = torch.where(drop, self.null_condition(y), y)
        out = self.net(z, t, y)
        # the target in the network's own parameterisation, computed exactly
        if self.prediction_type == 'eps':
            target = eps
        elif self.prediction_type == 'v':
            a, s = alpha.view(-1, 1, 1, 1), sigma.view(-1, 1, 1, 1)
            target = a * eps - s * x
        else:
            target = x
        return dict(loss=self.loss_fn(out, target, alpha, sigma,
                                      self.prediction_type))
