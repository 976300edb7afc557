"""Stage 1 of Meng et al. (CVPR 2023): distil a classifier-free-guided teacher
into one w-conditioned student."""
import copy
from typing import Optional, Union

import torch
from torch import Tensor, nn

from mmdistill.diffusion import PREDICTION_TYPES, cfg_combine
from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from .base import BaseCFGDistiller, XFn
from .conditioning import ConditionProvider
from .teacher import build_cfg_teacher


@MODELS.register_module()
class GuidanceDistiller(BaseCFGDistiller):
    """Guidance distillation, stage 1 (Meng et al., eq. 3).

    The student x_eta(z_t, y, w) is the teacher's network plus a
    zero-initialised guidance embedding, initialised from the teacher, and
    learns

        L = E_{w ~ U[w_min, w_max], t ~ U[t_min, 1], x, eps}
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
        data_preprocessor (dict | nn.Module): the data preprocessor.
        init_cfg (dict | None): mmengine's weight initialisation config.
    """

    def __init__(self, teacher: dict, teacher_ckpt: Optional[str] = None,
                 uncond_teacher: Optional[dict] = None,
                 uncond_teacher_ckpt: Optional[str] = None,
                 w_min: float = 0.0, w_max: float = 4.0,
                 loss: dict = dict(type='GuidedOutputL2Loss',
                                   weighting='snr_trunc'),
                 p_drop: float = 0.0, p_replace: float = 0.0,
                 feature_matching: Optional[dict] = None,
                 ema: Optional[dict] = dict(decay=0.999),
                 default_sample: dict = dict(steps=16, guidance=2.0,
                                             sampler='ddim'),
                 t_min: float = 1e-4,
                 data_preprocessor: Union[dict, nn.Module] = dict(
                     type='DiffusionDataPreprocessor'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(w_min, w_max, data_preprocessor, init_cfg)
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
        self.t_min = t_min
        self._init_distillation(loss, p_drop, p_replace, ema,
                                feature_matching, default_sample)

    def condition_provider(self) -> ConditionProvider:
        """The teacher's (class labels; a text teacher: prompts)."""
        return self.teacher.condition_provider()

    def sample_t(self, b: int, device: torch.device,
                 dtype: torch.dtype) -> Tensor:
        """t ~ U[t_min, 1]."""
        return torch.rand(b, device=device) * (1 - self.t_min) + self.t_min

    @torch.no_grad()
    def teacher_target(self, z: Tensor, t: Tensor, y: Tensor,
                       w: Tensor) -> Tensor:
        """x_w = (1 + w) x_c - w x_u at z_t (batched cond + uncond)."""
        return self.teacher.guided_x_fn(y, w, net=self.teacher.net)(z, t)

    def feature_combine(self, w: Tensor) -> XFn:
        """Teacher features f of the batched call: (1 + w) f_c - w f_u."""
        return lambda c, u: cfg_combine(c, u, w.to(c.dtype))
