"""The models the benchmark sections measure, built from the command line.

- the digits CFG teacher (``CFGDiffusion`` with the CompactUNet of
  configs/_base_/models/cfg_unet_digits.py; narrower with ``--quick``),
- stage 1 (``GuidanceDistiller``, w in [0, 4]) and stage 2
  (``ProgressiveDistiller``, 32 steps) around it,
- the plain peer: the stage-1 objective written without mmdistill
  (:class:`PlainStage1`),
- the optimizer of the stage-1/2 configs and a random digits-shaped batch.

Weights are random (perturbed so the outputs are not constant; speed does
not depend on them) unless ``--teacher-ckpt`` / ``--student-ckpt`` are
given. ``--teacher-family ddpm`` measures the real-format teacher instead:
the trained diffusers UNet2DModel folder ``checkpoints/ddpm-unet2d-digits``
(eps, linear DDPM betas) through ``DiffusersUNet2D``, the adapter every
user of a pretrained diffusers model runs.
"""
import argparse
import copy
import math
import os.path as osp
from typing import Any, Dict, Optional

import torch


def denoiser_cfg(quick: bool) -> Dict[str, Any]:
    """The digits CompactUNet config.

    Args:
        quick: a narrower network (8 base channels instead of 32).

    Returns:
        The denoiser config of configs/_base_/models/cfg_unet_digits.py.
    """
    return dict(type='CompactUNet', in_channels=1,
                base_channels=8 if quick else 32, channel_mult=(1, 2),
                num_res_blocks=1, num_classes=10)


def teacher_cfg(quick: bool) -> Dict[str, Any]:
    """The digits CFG teacher config.

    Args:
        quick: the narrower denoiser of :func:`denoiser_cfg`.

    Returns:
        A ``CFGDiffusion`` config: cosine schedule, v-prediction, 64-step
        DDIM at w = 2 by default.
    """
    return dict(type='CFGDiffusion', denoiser=denoiser_cfg(quick),
                num_classes=10, image_shape=(1, 8, 8),
                schedule=dict(type='cosine'), prediction_type='v',
                loss=dict(type='GuidedOutputL2Loss', weighting='v_mse'),
                p_uncond=0.1, ema=dict(decay=0.999),
                default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))


#: the real-format teacher of ``--teacher-family ddpm``
DDPM_FOLDER = 'checkpoints/ddpm-unet2d-digits'


def is_ddpm(args: argparse.Namespace) -> bool:
    """Whether the models are the diffusers UNet2DModel family."""
    return getattr(args, 'teacher_family', 'compact') == 'ddpm'


def ddpm_teacher_cfg() -> Dict[str, Any]:
    """The real-format digits teacher: the trained DDPM folder
    (diffusers UNet2DModel, eps, linear betas) through ``DiffusersUNet2D``.

    Returns:
        A ``DiffusersCFGDiffusion`` config.
    """
    return dict(type='DiffusersCFGDiffusion',
                denoiser=dict(type='DiffusersUNet2D', pretrained=DDPM_FOLDER),
                num_classes=10, image_shape=(1, 8, 8), p_uncond=0.1,
                ema=dict(decay=0.999))


def perturb(module: torch.nn.Module, std: float = 0.05,
            seed: int = 0) -> torch.nn.Module:
    """Adds Gaussian noise to every parameter, in place.

    Zero-initialised output layers would give constant samples; speed does
    not depend on the values.

    Args:
        module: the network.
        std: standard deviation of the noise.
        seed: seed of the noise generator.

    Returns:
        ``module``.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def build_teacher(args: argparse.Namespace) -> torch.nn.Module:
    """The CFG teacher on ``args.device``.

    Args:
        args: the parsed command line (``quick``, ``teacher_ckpt``,
            ``device``).

    Returns:
        The teacher, its EMA network equal to its network.
    """
    from mmdistill.models.distillers.teacher import load_net_weights
    from mmdistill.registry import MODELS
    if is_ddpm(args):  # trained weights: the folder's
        return MODELS.build(ddpm_teacher_cfg()).to(args.device)
    m = MODELS.build(teacher_cfg(args.quick))
    if args.teacher_ckpt:
        load_net_weights(m.net, args.teacher_ckpt)
        m.net_ema.load_state_dict(m.net.state_dict())
    else:
        perturb(m.net)
        m.net_ema.load_state_dict(m.net.state_dict())
    return m.to(args.device)


def lora_settings() -> Dict[str, Any]:
    """The LoRA student of the digits LoRA configs (``student_lora`` of
    configs/guided_distill/guided_distill_ddpm_digits_v_lora.py)."""
    from mmengine.config import Config

    from .common import ROOT
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/guided_distill/guided_distill_ddpm_digits_v_lora.py'))
    return dict(cfg.model.student_lora)


def build_stage1(args: argparse.Namespace,
                 lora: Optional[Dict[str, Any]] = None) -> torch.nn.Module:
    """The stage-1 distiller (``GuidanceDistiller``, w in [0, 4]).

    Args:
        args: the parsed command line (``quick``, ``teacher_ckpt``,
            ``device``).
        lora: ``student_lora`` settings (the ddpm family only).

    Returns:
        The distiller on ``args.device``; without a checkpoint the student
        starts from the perturbed teacher, perturbed again.
    """
    from mmdistill.registry import MODELS
    if is_ddpm(args):
        return MODELS.build(dict(
            type='GuidanceDistiller', teacher=ddpm_teacher_cfg(), w_min=0.0,
            w_max=4.0, ema=dict(decay=0.999), student_lora=lora,
            loss=dict(type='GuidedOutputL2Loss', weighting='snr'))).to(
                args.device)
    m = MODELS.build(dict(type='GuidanceDistiller',
                          teacher=teacher_cfg(args.quick),
                          teacher_ckpt=args.teacher_ckpt, w_min=0.0,
                          w_max=4.0, ema=dict(decay=0.999)))
    if not args.teacher_ckpt:
        perturb(m.teacher.net)
        m.net.load_state_dict(m.teacher.net.state_dict(), strict=False)
        perturb(m.net, seed=1)
        m.net_ema.load_state_dict(m.net.state_dict())
    return m.to(args.device)


def build_stage2(args: argparse.Namespace,
                 lora: Optional[Dict[str, Any]] = None) -> torch.nn.Module:
    """The stage-2 distiller (``ProgressiveDistiller``, 32 steps).

    Args:
        args: the parsed command line (``quick``, ``student_ckpt``,
            ``device``).
        lora: ``student_lora`` settings (the ddpm family only).

    Returns:
        The distiller on ``args.device``; its teacher is the
        w-conditioned student (``--student-ckpt`` or random).
    """
    from mmdistill.registry import MODELS
    if is_ddpm(args):
        from mmdistill.models.adapters.networks import DiffusersUNet2D
        den = DiffusersUNet2D(pretrained=DDPM_FOLDER, guidance_embed=True)
        return MODELS.build(dict(
            type='ProgressiveDistiller',
            student=dict(type='DiffusersUNet2D', pretrained=DDPM_FOLDER,
                         guidance_embed=True),
            teacher_ckpt=args.student_ckpt, num_classes=10,
            image_shape=(1, 8, 8), num_steps=32, schedule=den.schedule,
            prediction_type='eps', student_lora=lora,
            loss=dict(type='GuidedOutputL2Loss', weighting='snr'))).to(
                args.device)
    m = MODELS.build(dict(type='ProgressiveDistiller',
                          student=dict(denoiser_cfg(args.quick),
                                       guidance_embed=True),
                          teacher_ckpt=args.student_ckpt, num_classes=10,
                          image_shape=(1, 8, 8), num_steps=32))
    if not args.student_ckpt:
        perturb(m.net, seed=1)
        m.teacher.net.load_state_dict(m.net.state_dict())
    return m.to(args.device)


def build_student_sampler(args: argparse.Namespace) -> torch.nn.Module:
    """The distilled student used for sampling.

    Args:
        args: as for :func:`build_stage2`.

    Returns:
        A w-conditioned network (stage-2 checkpoint if given) in eval
        mode; one evaluation per step.
    """
    return build_stage2(args).eval()


def optim_wrapper_for(model: torch.nn.Module) -> Any:
    """The stage-1/2 configs' optimizer.

    Args:
        model: the model whose trainable parameters are optimised.

    Returns:
        An mmengine ``OptimWrapper``: Adam lr 2e-4, grad-norm clip 1, over
        the parameters requiring grad only.
    """
    from mmengine.optim import OptimWrapper
    params = [p for p in model.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.Adam(params, lr=2e-4),
                        clip_grad=dict(max_norm=1.0))


def make_batch(b: int, device: str, seed: int = 0) -> Dict[str, Any]:
    """A random batch shaped like the digits data.

    Args:
        b: batch size.
        device: where the tensors go.
        seed: seed of the generator.

    Returns:
        ``inputs`` (b, 1, 8, 8) uniform in [-1, 1] and ``data_samples``
        (b,) labels in [0, 10).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((b, 1, 8, 8), generator=g) * 2 - 1
    y = torch.randint(0, 10, (b, ), generator=g)
    return dict(inputs=x.to(device), data_samples=y.to(device))


class PlainStage1:
    """The stage-1 objective written the plain way, without mmdistill.

    The teacher is a loaded network (parameters still requiring grad, no
    ``no_grad``/``inference_mode``) called twice, once conditional and once
    unconditional; the target is detached. Cosine schedule, v-prediction,
    SNR-truncated weighting max(alpha^2, sigma^2) in v space, Adam +
    grad-norm clip 1 (the same math as ``GuidanceDistiller``, no EMA).

    Args:
        teacher_net: the teacher's denoiser.
        student_net: the w-conditioned student's denoiser.
        num_classes: classes; label ``num_classes`` is unconditional.
    """

    def __init__(self, teacher_net: torch.nn.Module,
                 student_net: torch.nn.Module, num_classes: int = 10):
        self.teacher, self.student = teacher_net, student_net
        self.teacher.requires_grad_(True)
        self.num_classes = num_classes
        self.opt = torch.optim.Adam(self.student.parameters(), lr=2e-4)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training iteration.

        Args:
            x: clean images.
            y: their labels.

        Returns:
            The loss (before the update).
        """
        b = x.shape[0]
        t = torch.rand(b, device=x.device) * (1 - 1e-4) + 1e-4
        w = torch.rand(b, device=x.device) * 4.0
        eps = torch.randn_like(x)
        a = torch.cos(math.pi / 2 * t).view(-1, 1, 1, 1)
        s = torch.sin(math.pi / 2 * t).view(-1, 1, 1, 1)
        z = a * x + s * eps
        v_c = self.teacher(z, t, y)
        v_u = self.teacher(z, t, torch.full_like(y, self.num_classes))
        x_c, x_u = a * z - s * v_c, a * z - s * v_u
        wb = w.view(-1, 1, 1, 1)
        x_w = ((1 + wb) * x_c - wb * x_u).detach()
        v_target = (a * z - x_w) / s
        v = self.student(z, t, y, w)
        weight = torch.maximum(a**2, s**2).flatten()
        loss = (weight * (v - v_target).pow(2).flatten(1).mean(1)).mean()
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.opt.step()
        return loss


def build_peer(args: argparse.Namespace,
               stage1: Optional[torch.nn.Module] = None) -> PlainStage1:
    """The plain peer with copies of the stage-1 networks.

    Args:
        args: as for :func:`build_stage1`.
        stage1: the stage-1 distiller to copy (default: a new one).

    Returns:
        A :class:`PlainStage1` on copies of the teacher (eval mode) and
        student (train mode) networks.
    """
    s1 = stage1 if stage1 is not None else build_stage1(args)
    teacher = copy.deepcopy(s1.teacher.net).train(False)
    student = copy.deepcopy(s1.net).train()
    return PlainStage1(teacher, student)
