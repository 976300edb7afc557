"""Stage 1 of Meng et al. (CVPR 2023): distil a classifier-free-guided teacher
into one w-conditioned student."""
import copy

import torch
from mmengine.model import BaseModel

from mmdistill.diffusion import PREDICTION_TYPES, bcast, cfg_combine, from_x
from mmdistill.models.cfg_diffusion import EMAMixin, build_preprocessor
from mmdistill.models.losses.feature_matching import FeatureMatchingLoss
from mmdistill.models.sampling import GuidedSamplingMixin
from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from .conditioning import ClassLabelConditions, ConditionReplacer
from .teacher import (FrozenTeacherMixin, build_cfg_teacher, check_w_range,
                      per_sample_uniform)


def build_feature_matching(cfg, student_root, teacher_root):
    """``feature_matching=dict(pairs=[...])`` -> an attached
    :class:`FeatureMatchingLoss`, or None."""
    if not cfg:
        return None
    cfg = dict(cfg)
    cfg.setdefault('type', 'FeatureMatchingLoss')
    loss = MODELS.build(cfg)
    if not isinstance(loss, FeatureMatchingLoss):
        raise UserError('feature_matching must build a FeatureMatchingLoss')
    loss.attach(student_root, teacher_root)
    return loss


@MODELS.register_module()
class GuidanceDistiller(FrozenTeacherMixin, EMAMixin, GuidedSamplingMixin,
                        BaseModel):
    """Guidance distillation, stage 1 (Meng et al., eq. 3).

    The student x_eta(z_t, y, w) is the teacher's network plus a
    zero-initialised guidance embedding, initialised from the teacher, and
    learns

        L = E_{w ~ U[w_min, w_max], t ~ U(0, 1], x, eps}
              omega(lambda_t) || x_eta(z_t, y, w) - x_w(z_t) ||^2,
        x_w = (1 + w) x_theta(z_t, y) - w x_theta(z_t, null),
        z_t = alpha_t x + sigma_t eps,

    with the teacher's two branches evaluated in one batched call and the
    loss taken in the teacher's parameterisation (target converted with
    ``from_x``) under the weighting of ``loss`` (``snr_trunc`` by default).

    Args:
        teacher (dict): the teacher's model config (``CFGDiffusion``).
        teacher_ckpt (str | None): its checkpoint (EMA weights preferred).
        uncond_teacher (dict | None): denoiser config of a separate
            unconditional teacher network (pair form).
        uncond_teacher_ckpt (str | None): its checkpoint.
        w_min, w_max (float): guidance range of w ~ U[w_min, w_max].
        loss (dict): ``GuidedOutputL2Loss`` config.
        p_drop, p_replace (float): conditioning replacement probabilities
            (see :mod:`.conditioning`); the teacher target uses the replaced
            condition.
        feature_matching (dict | None): ``dict(pairs=[dict(student=...,
            teacher=..., weight=...)])``; teacher features of the batched
            cond + uncond call are combined as (1 + w) f_c - w f_u.
        ema (dict | None): student EMA (``dict(decay=0.999)``) or None.
        default_sample (dict): defaults of :meth:`sample`.
        t_min (float): t ~ U[t_min, 1] (avoids t = 0 exactly).
    """

    def __init__(self, teacher, teacher_ckpt=None, uncond_teacher=None,
                 uncond_teacher_ckpt=None, w_min=0.0, w_max=4.0,
                 loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
                 p_drop=0.0, p_replace=0.0, feature_matching=None,
                 ema=dict(decay=0.999),
                 default_sample=dict(steps=16, guidance=2.0, sampler='ddim'),
                 t_min=1e-4, data_preprocessor=dict(
                     type='DiffusionDataPreprocessor'), init_cfg=None):
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        check_w_range(w_min, w_max)
        self.teacher = build_cfg_teacher(teacher, teacher_ckpt,
                                         uncond_teacher, uncond_teacher_ckpt)
        t = self.teacher
        if t.prediction_type not in PREDICTION_TYPES:
            raise UserError(f'unknown teacher prediction_type '
                            f'{t.prediction_type!r}')
        base = t.net.cond if hasattr(t.net, 'cond') else t.net
        self.net = copy.deepcopy(base).requires_grad_(True)
        self.net.enable_guidance_embedding()
        self.net.train()
        self.schedule, self.prediction_type = t.schedule, t.prediction_type
        self.num_classes, self.image_shape = t.num_classes, t.image_shape
        self.w_min, self.w_max, self.t_min = float(w_min), float(w_max), t_min
        self.loss_fn = MODELS.build(loss)
        # a text teacher supplies its own null / random-other conditions
        provider = t.condition_provider() if hasattr(
            t, 'condition_provider') else ClassLabelConditions(
                self.num_classes)
        self.replacer = ConditionReplacer(provider, p_drop, p_replace)
        self.default_sample = dict(default_sample)
        self._init_ema(ema)
        self.feature_loss = build_feature_matching(feature_matching, self,
                                                   self.teacher)

    # -- model math --------------------------------------------------------
    def x_hat(self, net, z, t, y, w):
        """Student x_hat = to_x(net(z, t, y, w))."""
        return self.teacher.x_hat(net, z, t, y, w)

    def guided_x_fn(self, labels, w, sample_model='ema'):
        """x_fn(z, t) = x_eta(z, t, y, w): one evaluation per step."""
        net = self.pick_net(sample_model)
        return lambda z, t: self.x_hat(net, z, t, labels, w)

    @torch.no_grad()
    def teacher_target(self, z, t, y, w):
        """x_w = (1 + w) x_c - w x_u at z_t (batched cond + uncond)."""
        return self.teacher.guided_x_fn(y, w, net=self.teacher.net)(z, t)

    def ddp_ignored_names(self):
        return EMAMixin.ddp_ignored_names(self) + self.teacher_ignored_names()

    def loss(self, x, y):
        b = x.shape[0]
        t = torch.rand(b, device=x.device) * (1 - self.t_min) + self.t_min
        w = per_sample_uniform(b, self.w_min, self.w_max, x.device)
        eps = torch.randn_like(x)
        alpha, sigma = self.schedule.alpha_sigma(t)
        z = bcast(alpha, x) * x + bcast(sigma, x) * eps
        y = self.replacer(y)
        fl = self.feature_loss
        if fl is not None:
            with fl.recorders[1].record() as t_feats:
                target_x = self.teacher_target(z, t, y, w)
            with fl.recorders[0].record() as s_feats:
                out = self.net(z, t, y, w)
        else:
            target_x = self.teacher_target(z, t, y, w)
            out = self.net(z, t, y, w)
        target = from_x(target_x, z, alpha, sigma, self.prediction_type)
        losses = dict(loss=self.loss_fn(out, target, alpha, sigma,
                                        self.prediction_type))
        if fl is not None:
            losses['loss_feat'] = fl(
                s_feats, t_feats,
                combine=lambda c, u: cfg_combine(c, u, w.to(c.dtype)))
        return losses
