"""Frozen teachers for distillation.

A teacher is built from its model config (the ``model`` dict of the config it
was trained with) and its checkpoint, EMA weights preferred
(``net_ema.*`` over ``net.*``), then frozen: eval mode, ``requires_grad``
False, left out of the optimizer (:class:`TrainableOptimWrapperConstructor`)
and of DDP synchronisation (``ddp_ignored_names``).

Two kinds of CFG teacher are supported:

- one jointly trained network with a null class (label ``num_classes``);
- a pair of separate conditional and unconditional networks, wrapped by
  :class:`PairedDenoiser` into one denoiser with the same interface, so the
  rest of the code (``CFGDiffusion.guided_x_fn``, the batched cond + uncond
  call) does not change.
"""
import copy
import logging
from typing import Callable, List, Optional, Sequence

import torch
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmdistill.models.lora import is_lora_state, plain_net_state
from mmdistill.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmdistill.utils import (UserError, load_into, load_state_dict,
                             sub_state_dict)

WEIGHT_PREFIXES = ('net_ema.', 'net.')


def load_net_weights(net: nn.Module, ckpt_path: str, what: str = 'teacher',
                     prefixes: Sequence[str] = WEIGHT_PREFIXES,
                     check: Optional[Callable[[dict], None]] = None) -> str:
    """Load the preferred sub-network of a checkpoint into ``net``.

    Takes the first of ``prefixes`` present (EMA first); a bare network
    state dict (no prefix) is accepted too. One-line ``UserError`` when the
    file is missing/unsafe or does not match ``net``. ``check`` is called
    with the whole state dict first (e.g. to compare recorded settings). A
    LoRA student's weights are merged first (W + (alpha / r) B A,
    :func:`mmdistill.models.lora.plain_net_state`), so ``net`` is the plain
    architecture.

    Returns:
        str: the prefix used ('' for a bare state dict).
    """
    state = load_state_dict(ckpt_path)
    if check is not None:
        check(state)
    prefix, sub = sub_state_dict(state, list(prefixes))
    if not sub:
        prefix, sub = '', state
    elif is_lora_state(sub):
        sub = plain_net_state(state, prefix, ckpt_path)
    load_into(net, sub, what, ckpt_path)
    return prefix


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients, in place; returns the module."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class PairedDenoiser(nn.Module):
    """A conditional and an unconditional network behind one denoiser
    interface ``net(z, t, y, w=None)``: samples with ``y == num_classes``
    (null) go to ``uncond``, the others to ``cond``; outputs are scattered
    back in batch order.

    Args:
        cond (nn.Module): class-conditional network.
        uncond (nn.Module): unconditional network (called with the null
            label, which an unconditional network ignores).
        num_classes (int): number of real classes.
    """

    def __init__(self, cond: nn.Module, uncond: nn.Module,
                 num_classes: int) -> None:
        super().__init__()
        self.cond, self.uncond, self.num_classes = cond, uncond, num_classes

    def forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                w: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Route each sample to ``cond`` or ``uncond`` by its label."""
        null = y >= self.num_classes
        out = None
        for mask, net in ((~null, self.cond), (null, self.uncond)):
            if not bool(mask.any()):
                continue
            o = net(z[mask], t[mask], y[mask])
            if out is None:
                out = o.new_zeros((z.shape[0], ) + o.shape[1:])
            out[mask] = o
        return out


def _as_cfg(cfg):
    cfg = copy.deepcopy(dict(cfg))
    cfg['ema'] = None  # the teacher's own weights are loaded into ``net``
    return cfg


def build_cfg_teacher(teacher: dict, teacher_ckpt: Optional[str] = None,
                      uncond_teacher: Optional[dict] = None,
                      uncond_teacher_ckpt: Optional[str] = None
                      ) -> nn.Module:
    """Build and freeze a ``CFGDiffusion`` teacher.

    Args:
        teacher (dict): model config of the teacher (``CFGDiffusion``).
        teacher_ckpt (str | None): its checkpoint (None: random weights, for
            tests only).
        uncond_teacher (dict | None): denoiser config of a separate
            unconditional network (the pair form); its weights come from
            ``uncond_teacher_ckpt``.
        uncond_teacher_ckpt (str | None): checkpoint of the unconditional
            network.

    Returns:
        CFGDiffusion: frozen, with ``net`` holding the (EMA) weights.
    """
    if not isinstance(teacher, dict):
        raise UserError('teacher must be the model config dict of the '
                        'teacher (e.g. the `model` of its training config)')
    model = MODELS.build(_as_cfg(teacher))
    if teacher_ckpt is not None:
        load_net_weights(model.net, teacher_ckpt, 'teacher')
    if uncond_teacher is not None or uncond_teacher_ckpt is not None:
        if uncond_teacher is None:
            uncond_net = copy.deepcopy(model.net)
        else:
            uncond_net = MODELS.build(dict(uncond_teacher))
        if uncond_teacher_ckpt is not None:
            load_net_weights(uncond_net, uncond_teacher_ckpt,
                             'unconditional teacher')
        model.net = PairedDenoiser(model.net, uncond_net, model.num_classes)
    return freeze(model)


class FrozenTeacherMixin:
    """Keeps ``self.teacher`` frozen and in eval mode whatever ``train()``
    is called with, and lists it in ``ddp_ignored_names``."""

    def train(self, mode: bool = True):
        """``nn.Module.train`` that leaves the teacher in eval mode."""
        super().train(mode)
        if getattr(self, 'teacher', None) is not None:
            self.teacher.eval()
        return self

    def teacher_ignored_names(self) -> List[str]:
        """The teacher's parameter and buffer names (for DDP to ignore)."""
        t = getattr(self, 'teacher', None)
        if t is None:
            return []
        return [f'teacher.{n}' for n, _ in t.named_parameters()] + \
            [f'teacher.{n}' for n, _ in t.named_buffers()]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that hands the optimizer only the
    parameters with ``requires_grad`` (the student), never a frozen
    teacher's.

    With a ``paramwise_cfg`` (e.g. ``custom_keys=dict(guidance_emb=dict(
    lr_mult=10))``) the parameters that end up with the same options share
    one param group, so a foreach / fused optimizer still updates them in
    a few batched kernels instead of one group per tensor.
    """

    def __call__(self, model):
        if self.paramwise_cfg:
            return super().__call__(model)
        inner = model.module if hasattr(model, 'module') else model
        return super().__call__(_TrainableView(inner))

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        if prefix:  # the default constructor's recursion into children
            return super().add_params(params, module, prefix, is_dcn_module)
        per_tensor = []
        logger = MMLogger.get_current_instance()
        quiet = _DropFrozenWarnings()
        logger.addFilter(quiet)  # one warning per frozen teacher tensor
        try:
            super().add_params(per_tensor, module, prefix, is_dcn_module)
        finally:
            logger.removeFilter(quiet)
        merged = {}
        for group in per_tensor:
            options = tuple(sorted((k, v) for k, v in group.items()
                                   if k != 'params'))
            trainable = [p for p in group['params'] if p.requires_grad]
            if trainable:
                merged.setdefault(options, []).extend(trainable)
        params.extend(dict(options, params=ps)
                      for options, ps in merged.items())


class _DropFrozenWarnings(logging.Filter):
    """Drops the default constructor's per-tensor 'requires_grad=False'
    warnings (the frozen teacher is left out on purpose)."""

    def filter(self, record):
        return 'requires_grad=False' not in record.getMessage()


class _TrainableView:
    """Stands in for a model whose ``parameters()`` are the trainable ones."""

    def __init__(self, model):
        self._model = model

    def parameters(self):
        return (p for p in self._model.parameters() if p.requires_grad)

    def __getattr__(self, name):
        return getattr(self._model, name)


def check_w_range(w_min: float, w_max: float) -> None:
    """One-line error unless 0 <= w_min <= w_max."""
    if w_min > w_max:
        raise UserError(f'w_min ({w_min}) > w_max ({w_max}); set '
                        'w_min <= w_max, e.g. w_min=0, w_max=4')
    if w_min < 0:
        raise UserError(f'w_min must be >= 0 (Meng\'s convention '
                        f'(1+w) x_c - w x_u), got {w_min}')


def check_p_w_min(p: float) -> float:
    """One-line error unless 0 <= p_w_min < 1."""
    if not 0.0 <= float(p) < 1.0:
        raise UserError(f'p_w_min must be in [0, 1), got {p!r} (the '
                        'fraction of each batch trained at w = w_min; 0 '
                        'samples every w from U[w_min, w_max])')
    return float(p)


def sample_guidance(b: int, low: float, high: float, p_low: float,
                    device: torch.device,
                    generator: Optional[torch.Generator] = None
                    ) -> torch.Tensor:
    """Per-sample guidance weights, shape (B,):

        w = low              with probability p_low,
        w ~ U[low, high]     otherwise.

    The atom at ``low`` (w = 0: the conditional teacher itself) keeps the
    student's unguided output anchored to the teacher's; with
    ``p_low = 0`` this is :func:`per_sample_uniform` (the same random
    draws).
    """
    w = per_sample_uniform(b, low, high, device, generator)
    if p_low > 0:
        u = torch.rand(b, generator=generator).to(device)
        w = torch.where(u < p_low, torch.full_like(w, low), w)
    return w


def per_sample_uniform(b: int, low: float, high: float,
                       device: torch.device,
                       generator: Optional[torch.Generator] = None
                       ) -> torch.Tensor:
    """w ~ U[low, high] per sample, shape (B,)."""
    u = torch.rand(b, generator=generator).to(device)
    return low + (high - low) * u
