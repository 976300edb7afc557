"""The skeleton shared by the CFG distillers (stage 1 and stage 2).

Both stages train a w-conditioned student x_S(z_t, t, y, w) on

    L = E_{t, w, x, eps} omega(lambda_t) || x_S(z_t, t, y', w) - x~ ||^2,
    z_t = alpha_t x + sigma_t eps,   w ~ U[w_min, w_max],
    y'  = replace(y)   (conditioning replacement, :mod:`.conditioning`),

in the student's parameterisation (the target converted with ``from_x``).
A stage only says how t is drawn (:meth:`BaseCFGDistiller.sample_t`) and
what the teacher's target x~ = :meth:`BaseCFGDistiller.teacher_target`
(z_t, t, y', w) is; optional feature matching compares intermediate
features of the teacher's target call and of the student's call.
"""
import contextlib
from typing import Callable, ContextManager, Dict, List, Optional, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmdistill.diffusion import bcast, from_x, to_x
from mmdistill.models.cfg_diffusion import EMAMixin, build_preprocessor
from mmdistill.models.losses.feature_matching import FeatureMatchingLoss
from mmdistill.models.sampling import GuidedSamplingMixin
from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from .conditioning import ConditionProvider, ConditionReplacer
from .teacher import (FrozenTeacherMixin, check_p_w_min, check_w_range,
                      sample_guidance)

XFn = Callable[[Tensor, Tensor], Tensor]


def build_feature_matching(cfg: Optional[dict], student_root: nn.Module,
                           teacher_root: nn.Module
                           ) -> Optional[FeatureMatchingLoss]:
    """``feature_matching=dict(pairs=[...])`` -> an attached
    :class:`FeatureMatchingLoss`, or None.

    Args:
        cfg: the ``feature_matching`` config (None or empty: off).
        student_root: the module the student names are relative to.
        teacher_root: the module the teacher names are relative to.

    Returns:
        The loss with its recorders attached, or None.
    """
    if not cfg:
        return None
    cfg = dict(cfg)
    cfg.setdefault('type', 'FeatureMatchingLoss')
    loss = MODELS.build(cfg)
    if not isinstance(loss, FeatureMatchingLoss):
        raise UserError('feature_matching must build a FeatureMatchingLoss')
    loss.attach(student_root, teacher_root)
    return loss


class BaseCFGDistiller(FrozenTeacherMixin, EMAMixin, GuidedSamplingMixin,
                       BaseModel):
    """A frozen teacher distilled into a w-conditioned student ``net``.

    One training example (:meth:`loss`), in this order of random draws:

        t   = sample_t(B)                     (stage-specific)
        w   ~ U[w_min, w_max]                 per sample (w = w_min with
                                              probability p_w_min)
        eps ~ N(0, I),  z_t = alpha_t x + sigma_t eps
        y'  = replace(y)                      (p_drop, p_replace)
        x~  = teacher_target(z_t, t, y', w)   (stage-specific, no gradient)
        L   = omega(lambda_t) || x_S(z_t, t, y', w) - x~ ||^2
              [+ feature matching]

    The student samples with one evaluation per step (:meth:`guided_x_fn`).

    A subclass calls ``super().__init__`` first, then sets ``net``,
    ``teacher``, ``schedule``, ``prediction_type``, ``num_classes`` and
    ``image_shape``, then calls :meth:`_init_distillation`; it implements
    :meth:`condition_provider`, :meth:`sample_t` and :meth:`teacher_target`
    and may implement :meth:`feature_combine`.

    Args:
        w_min: lower end of the guidance range.
        w_max: upper end of the guidance range.
        data_preprocessor: config or module of the data preprocessor.
        init_cfg: mmengine's weight initialisation config.
        p_w_min: fraction of the samples trained at w = w_min exactly
            (see :func:`~.teacher.sample_guidance`); 0: w ~ U[w_min, w_max]
            for all, as in Meng et al.
    """

    def __init__(self, w_min: float, w_max: float,
                 data_preprocessor: Union[dict, nn.Module],
                 init_cfg: Optional[dict] = None,
                 p_w_min: float = 0.0) -> None:
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        check_w_range(w_min, w_max)
        self.w_min, self.w_max = float(w_min), float(w_max)
        self.p_w_min = check_p_w_min(p_w_min)

    def _init_distillation(self, loss: dict, p_drop: float,
                           p_replace: float, ema: Optional[dict],
                           feature_matching: Optional[dict],
                           default_sample: dict) -> None:
        """Build the loss, the conditioning replacement, the student EMA
        and the feature matching (once ``net`` and ``teacher`` exist).

        Args:
            loss: ``GuidedOutputL2Loss`` config.
            p_drop: probability of the null condition.
            p_replace: probability of a random other condition.
            ema: student EMA config, or None.
            feature_matching: ``dict(pairs=[...])``, or None.
            default_sample: defaults of :meth:`sample`.
        """
        self.loss_fn = MODELS.build(loss)
        self.replacer = ConditionReplacer(self.condition_provider(), p_drop,
                                          p_replace)
        self.default_sample = dict(default_sample)
        self._init_ema(ema)
        self.feature_loss = build_feature_matching(feature_matching, self,
                                                   self.teacher)

    # -- what a stage supplies ---------------------------------------------
    def condition_provider(self) -> ConditionProvider:
        """The null / other conditions of the teacher's condition type."""
        raise NotImplementedError

    def sample_t(self, b: int, device: torch.device,
                 dtype: torch.dtype) -> Tensor:
        """Draw the (B,) training times t."""
        raise NotImplementedError

    def teacher_target(self, z: Tensor, t: Tensor, y: Tensor,
                       w: Tensor) -> Tensor:
        """The teacher's target x~ for the student's x_S(z_t, t, y, w)."""
        raise NotImplementedError

    def feature_combine(self, w: Tensor) -> Optional[XFn]:
        """How teacher features of a batched (2B, ...) call merge into
        (B, ...) ones; None: the teacher's features are used as they are."""
        return None

    # -- the shared model math ---------------------------------------------
    def x_hat(self, net: nn.Module, z: Tensor, t: Tensor, y: Tensor,
              w: Tensor) -> Tensor:
        """x_hat = to_x(net(z, t, y, w)) in the model's parameterisation."""
        return to_x(net(z, t, y, w), z, *self.schedule.alpha_sigma(t),
                    self.prediction_type)

    def student_output(self, out: Tensor, z: Tensor, alpha: Tensor,
                       sigma: Tensor) -> Tensor:
        """The student network's output ``out`` in the student's
        parameterisation ``prediction_type`` (the loss is taken there); as
        it is, unless the student's readout is being changed (stage 1 with
        ``student_prediction_type``)."""
        return out

    def guided_x_fn(self, labels: Tensor, w: Tensor,
                    sample_model: str = 'ema') -> XFn:
        """x_fn(z, t) = x_S(z, t, y, w): one evaluation per step."""
        net = self.pick_net(sample_model)
        return lambda z, t: self.x_hat(net, z, t, labels, w)

    def ddp_ignored_names(self) -> List[str]:
        """The student EMA and the frozen teacher: never synchronised."""
        return EMAMixin.ddp_ignored_names(self) + self.teacher_ignored_names()

    def _record(self, role: str) -> ContextManager[Dict[str, Tensor]]:
        """Record the ``role`` ('student' / 'teacher') features of the
        feature matching inside a ``with`` block (an empty dict without
        feature matching)."""
        if self.feature_loss is None:
            return contextlib.nullcontext({})
        return self.feature_loss.record(role)

    def loss(self, x: Tensor, y: Tensor) -> Dict[str, Tensor]:
        """The distillation loss of one batch (see the class docstring).

        Args:
            x: clean images (or latents) (B, C, H, W).
            y: conditions (B, ...).

        Returns:
            ``loss`` and, with feature matching, ``loss_feat``.
        """
        b = x.shape[0]
        t = self.sample_t(b, x.device, x.dtype)
        w = sample_guidance(b, self.w_min, self.w_max, self.p_w_min,
                            x.device)
        eps = torch.randn_like(x)
        alpha, sigma = self.schedule.alpha_sigma(t)
        z = bcast(alpha, x) * x + bcast(sigma, x) * eps
        y = self.replacer(y)
        with self._record('teacher') as t_feats:
            target_x = self.teacher_target(z, t, y, w)
        with self._record('student') as s_feats:
            out = self.student_output(self.net(z, t, y, w), z, alpha, sigma)
        target = from_x(target_x, z, alpha, sigma, self.prediction_type)
        losses = dict(loss=self.loss_fn(out, target, alpha, sigma,
                                        self.prediction_type))
        if self.feature_loss is not None:
            losses['loss_feat'] = self.feature_loss(
                s_feats, t_feats, combine=self.feature_combine(w))
        return losses
