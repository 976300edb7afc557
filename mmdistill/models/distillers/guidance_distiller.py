"""Stage 1 of Meng et al. (CVPR 2023): distil a classifier-free-guided teacher
into one w-conditioned student."""
import copy
from typing import Optional, Union

import torch
from torch import Tensor, nn

from mmdistill.diffusion import (PREDICTION_TYPES, blended_to_x, cfg_combine,
                                 from_x)
from mmdistill.models.lora import (LORA_BUFFER, add_lora, check_lora_cfg,
                                   lora_record, tie_frozen)
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
    loss taken in the student's parameterisation (target converted with
    ``from_x``) under the weighting of ``loss`` (``snr_trunc`` by default).

    **Student parameterisation.** By default the student predicts what the
    teacher predicts. ``student_prediction_type`` ('eps' | 'x' | 'v') gives
    it another one (a v student of an eps teacher, Salimans & Ho section 4)
    while it still starts as the conditional teacher: its x_hat is read from
    the network output ``out`` by :func:`~mmdistill.diffusion.blended_to_x`
    with s = min(1, updates / ``reparam_iters``), the teacher's readout at
    s = 0 (the fresh student equals the teacher exactly) and the student's
    at s = 1 (from then on the network outputs v). The progress s is the
    buffer ``readout_progress`` and the student's type the buffer
    ``student_prediction_code`` (both saved with the weights; stage 2 checks
    them). The student EMA starts averaging at s = 1.

    **LoRA student.** ``student_lora=dict(rank, alpha, target_modules)``
    (:mod:`mmdistill.models.lora`): the student is the teacher's network with
    zero-initialised LoRA adapters on the named layers; only the adapters
    and the guidance embedding train, and the student's frozen base weights
    are the teacher's tensors (one copy in memory, also for the EMA). The
    fresh student still equals the conditional teacher exactly.

    Args:
        teacher (dict): the teacher's model config (``CFGDiffusion``).
        teacher_ckpt (str | None): its checkpoint (EMA weights preferred).
        uncond_teacher (dict | None): denoiser config of a separate
            unconditional teacher network (pair form).
        uncond_teacher_ckpt (str | None): its checkpoint.
        w_min, w_max (float): guidance range of w ~ U[w_min, w_max].
        p_w_min (float): fraction of each batch at w = w_min exactly (an
            anchor of the unguided output; 0: all w ~ U[w_min, w_max]).
        loss (dict): ``GuidedOutputL2Loss`` config.
        p_drop, p_replace (float): conditioning replacement probabilities
            (see :mod:`.conditioning`); the teacher target uses the replaced
            condition.
        feature_matching (dict | None): ``dict(pairs=[dict(student=...,
            teacher=..., weight=...)])``; teacher features of the batched
            cond + uncond call are combined as (1 + w) f_c - w f_u.
        student_prediction_type (str | None): the student's
            parameterisation; None: the teacher's.
        student_lora (dict | None): ``dict(rank=..., alpha=...,
            target_modules=[...], dropout=0.0)``: a LoRA student sharing
            the teacher's frozen weights; None: a full student.
        reparam_iters (int): updates over which the student's readout moves
            from the teacher's parameterisation to
            ``student_prediction_type`` (0: at once; the fresh student then
            does not equal the teacher).
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
                 p_w_min: float = 0.0,
                 loss: dict = dict(type='GuidedOutputL2Loss',
                                   weighting='snr_trunc'),
                 p_drop: float = 0.0, p_replace: float = 0.0,
                 feature_matching: Optional[dict] = None,
                 student_prediction_type: Optional[str] = None,
                 reparam_iters: int = 500,
                 student_lora: Optional[dict] = None,
                 ema: Optional[dict] = dict(decay=0.999),
                 default_sample: dict = dict(steps=16, guidance=2.0,
                                             sampler='ddim'),
                 t_min: float = 1e-4,
                 data_preprocessor: Union[dict, nn.Module] = dict(
                     type='DiffusionDataPreprocessor'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(w_min, w_max, data_preprocessor, init_cfg,
                         p_w_min)
        self.teacher = build_cfg_teacher(teacher, teacher_ckpt,
                                         uncond_teacher, uncond_teacher_ckpt)
        t = self.teacher
        if t.prediction_type not in PREDICTION_TYPES:
            raise UserError(f'unknown teacher prediction_type '
                            f'{t.prediction_type!r}')
        base = t.net.cond if hasattr(t.net, 'cond') else t.net
        self.lora_cfg = check_lora_cfg(student_lora)
        self.net = copy.deepcopy(base).requires_grad_(True)
        self.net.enable_guidance_embedding()
        if self.lora_cfg is not None:
            add_lora(self.net, self.lora_cfg)
            tie_frozen(self.net, base)
            self.register_buffer(LORA_BUFFER, lora_record(self.lora_cfg))
        self.net.train()
        self.schedule = t.schedule
        self.teacher_prediction_type = t.prediction_type
        self.prediction_type = check_student_prediction_type(
            student_prediction_type, t.prediction_type)
        self.reparam_iters = check_reparam_iters(reparam_iters)
        self.register_buffer('student_prediction_code', torch.tensor(
            PREDICTION_TYPES.index(self.prediction_type)))
        self.register_buffer('readout_progress', torch.tensor(
            0.0 if self.reparameterised and self.reparam_iters else 1.0))
        if self.reparameterised and ema is not None:
            ema = dict(ema, start_iter=max(int(ema.get('start_iter', 0)),
                                           self.reparam_iters))
        self.num_classes, self.image_shape = t.num_classes, t.image_shape
        self.t_min = t_min
        self._init_distillation(loss, p_drop, p_replace, ema,
                                feature_matching, default_sample)

    # -- the student's parameterisation -------------------------------------
    @property
    def reparameterised(self) -> bool:
        """Whether the student predicts another quantity than the
        teacher."""
        return self.prediction_type != self.teacher_prediction_type

    def readout_s(self) -> float:
        """s in [0, 1]: 0 reads the student's output as the teacher's
        parameterisation, 1 as its own."""
        return float(self.host_value('readout_progress'))

    def x_hat(self, net: nn.Module, z: Tensor, t: Tensor, y: Tensor,
              w: Tensor) -> Tensor:
        """x_hat of a student network (:func:`blended_to_x` at the
        current s)."""
        if not self.reparameterised:
            return super().x_hat(net, z, t, y, w)
        return blended_to_x(net(z, t, y, w), z,
                            *self.schedule.alpha_sigma(t),
                            self.teacher_prediction_type,
                            self.prediction_type, self.readout_s())

    def student_output(self, out: Tensor, z: Tensor, alpha: Tensor,
                       sigma: Tensor) -> Tensor:
        """The output in the student's parameterisation (converted
        through x_hat while s < 1)."""
        s = self.readout_s()
        if not self.reparameterised or s >= 1:
            return out
        x = blended_to_x(out, z, alpha, sigma, self.teacher_prediction_type,
                         self.prediction_type, s)
        return from_x(x, z, alpha, sigma, self.prediction_type)

    def after_train_update(self) -> None:
        """The EMA update, then s <- min(1, updates / reparam_iters)."""
        super().after_train_update()
        if self.reparameterised and self.readout_s() < 1:
            self.readout_progress.fill_(min(
                1.0, self.host_value('num_updates') / self.reparam_iters))

    def load_state_dict(self, state_dict: dict, strict: bool = True,
                        assign: bool = False):
        """As ``nn.Module.load_state_dict``; a checkpoint written before
        the student's parameterisation was recorded is the teacher's
        parameterisation, fully read out."""
        state = dict(state_dict)
        if any(k.startswith('net.') for k in state):
            state.setdefault('student_prediction_code', torch.tensor(
                PREDICTION_TYPES.index(self.teacher_prediction_type)))
            state.setdefault('readout_progress', torch.tensor(1.0))
        code = int(state.get('student_prediction_code',
                             self.student_prediction_code))
        if code != int(self.student_prediction_code):
            raise UserError(
                f'the checkpoint holds a {PREDICTION_TYPES[code]!r} student '
                f'but this model has student_prediction_type='
                f'{self.prediction_type!r}; set model.student_prediction_type'
                f'={PREDICTION_TYPES[code]!r} (the config it was trained '
                'with)')
        return super().load_state_dict(state, strict=strict, assign=assign)

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


def check_student_prediction_type(student: Optional[str],
                                  teacher: str) -> str:
    """The student's parameterisation (None: the teacher's); one-line
    error for an unknown name."""
    if student is None:
        return teacher
    if student not in PREDICTION_TYPES:
        raise UserError(f'unknown student_prediction_type {student!r}; use '
                        f"one of {PREDICTION_TYPES} (or None for the "
                        f"teacher's, {teacher!r})")
    return student


def check_reparam_iters(n) -> int:
    """A non-negative integer number of updates."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UserError(f'reparam_iters must be an integer >= 0, got {n!r}')
    return n
