"""Stage 2: progressive distillation (Salimans & Ho, ICLR 2022) of a
w-conditioned student (Meng et al., stage 2)."""
import copy
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mmdistill.diffusion import (PREDICTION_TYPES, build_schedule, ddim_step,
                                 progressive_target)
from mmdistill.models.lora import (LORA_BUFFER, add_lora, check_lora_cfg,
                                   fold_lora, fold_lora_state, is_lora_state,
                                   lora_record, plain_keys, recorded_scaling,
                                   tie_frozen)
from mmdistill.models.sampling import GuidedSamplingMixin
from mmdistill.models.sharding import load_matched
from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from .base import BaseCFGDistiller
from .conditioning import ConditionProvider, build_condition_provider
from .teacher import freeze, load_net_weights


def check_power_of_two_ratio(n_start: int, n_end: int) -> None:
    """One-line error unless n_start = 2^k * n_end, k >= 0."""
    if not (isinstance(n_start, int) and isinstance(n_end, int)) or \
            n_end < 1 or n_start < n_end:
        raise UserError(f'need integers N_start >= N_end >= 1, got '
                        f'N_start={n_start}, N_end={n_end}')
    ratio = n_start // n_end
    if n_start % n_end or ratio & (ratio - 1):
        raise UserError(f'N_start ({n_start}) is not a power of two times '
                        f'N_end ({n_end}); use e.g. N_start='
                        f'{n_end * 2 ** max(ratio.bit_length() - 1, 0)}')


def check_stage1_parameterisation(state: dict,
                                  prediction_type: Optional[str],
                                  path: str) -> Optional[str]:
    """The parameterisation the stage-1 checkpoint's student records (its
    ``student_prediction_code`` / ``readout_progress`` buffers; None when
    not recorded).

    Raises:
        UserError: it contradicts ``prediction_type`` (None: anything
            goes), or the student has not finished changing its readout.
    """
    code = state.get('student_prediction_code')
    if code is None:
        return None
    recorded = PREDICTION_TYPES[int(code)]
    if prediction_type is not None and recorded != prediction_type:
        raise UserError(
            f'prediction_type={prediction_type!r} contradicts the stage-1 '
            f'checkpoint {path}, whose student predicts {recorded!r}; set '
            f'model.prediction_type={recorded!r}')
    progress = float(state.get('readout_progress', 1.0))
    if progress < 1:
        raise UserError(
            f'the stage-1 student of {path} is still changing its '
            f'parameterisation (readout at s = {progress:.2f} of 1); train '
            'stage 1 for at least reparam_iters updates and use its last '
            'checkpoint')
    return recorded


@MODELS.register_module()
class ProgressiveDistiller(BaseCFGDistiller):
    """One student step t -> t'' = t - 1/N learns two teacher DDIM steps
    t -> t' = t - 1/(2N) -> t''.

    With z_t = alpha_t x + sigma_t eps, t drawn from the student grid
    {i/N : i = 1..N} and w ~ U[w_min, w_max] per sample (the teacher is the
    w-conditioned stage-1 student, so no CFG doubling):

        z_t'  = DDIM(z_t,  x_T(z_t, t, y, w),  t -> t')
        z_t'' = DDIM(z_t', x_T(z_t', t', y, w), t' -> t'')
        x~    = (z_t'' - (sigma_t''/sigma_t) z_t)
                / (alpha_t'' - (sigma_t''/sigma_t) alpha_t)
        L     = omega(lambda_t) || x_S(z_t, t, y, w) - x~ ||^2

    in the student's parameterisation (``from_x``). The current N is the
    buffer ``num_steps`` (saved with the weights, so it survives resume);
    :class:`ProgressiveDistillationHook` halves it and copies the student
    into the teacher.

    A LoRA student (``student_lora``) starts from the merged stage-1
    student (a LoRA stage-1 checkpoint is merged, W + (alpha / r) B A) and
    shares the teacher's frozen weights; at each halving its update is
    folded into those shared weights (teacher <- student without a copy)
    and it restarts at B = 0. With an EMA, the student restarts from the
    EMA (the folded network), not from its raw weights.

    Args:
        student (dict): denoiser config of the student (the stage-1
            architecture, ``guidance_embed=True``).
        teacher_ckpt (str | None): stage-1 checkpoint; its EMA weights (else
            ``net.*``) initialise both the teacher and the student.
        num_classes (int), image_shape (tuple): data description.
        num_steps (int): student steps N at the start (the teacher takes
            2N).
        schedule (dict): as the stage-1 model.
        prediction_type (str | None): the student's parameterisation, as
            the stage-1 student's; None: the one the stage-1 checkpoint
            records (``student_prediction_type``), 'v' when it records none.
            A contradiction with the record is an error.
        w_min, w_max (float): guidance range.
        p_w_min (float): fraction of each batch at w = w_min exactly (an
            anchor of the unguided output; 0: all w ~ U[w_min, w_max]).
        loss (dict): ``GuidedOutputL2Loss`` config.
        p_drop, p_replace (float): conditioning replacement.
        feature_matching (dict | None): feature matching pairs.
        ema (dict | None): student EMA (the paper uses none).
        student_lora (dict | None): ``dict(rank=..., alpha=...,
            target_modules=[...])``: a LoRA student (see above).
        default_sample (dict): ``sample()`` defaults; steps default to the
            current N.
        data_preprocessor (dict | nn.Module): the data preprocessor (a
            text model's gives the empty prompt's embedding).
        init_cfg (dict | None): mmengine's weight initialisation config.
    """

    def __init__(self, student: dict, num_classes: int,
                 image_shape: Sequence[int],
                 teacher_ckpt: Optional[str] = None, num_steps: int = 32,
                 schedule: Union[dict, object] = dict(type='cosine'),
                 prediction_type: Optional[str] = None, w_min: float = 0.0,
                 w_max: float = 4.0,
                 p_w_min: float = 0.0,
                 loss: dict = dict(type='GuidedOutputL2Loss',
                                   weighting='snr_trunc'),
                 p_drop: float = 0.0, p_replace: float = 0.0,
                 feature_matching: Optional[dict] = None,
                 ema: Optional[dict] = None,
                 student_lora: Optional[dict] = None,
                 default_sample: dict = dict(guidance=2.0, sampler='ddim'),
                 data_preprocessor: Union[dict, nn.Module] = dict(
                     type='DiffusionDataPreprocessor'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(w_min, w_max, data_preprocessor, init_cfg,
                         p_w_min)
        if prediction_type is not None and \
                prediction_type not in PREDICTION_TYPES:
            raise UserError(f'prediction_type must be one of '
                            f'{PREDICTION_TYPES}, got {prediction_type!r}')
        if not isinstance(num_steps, int) or num_steps < 1:
            raise UserError(f'num_steps must be a positive integer, got '
                            f'{num_steps!r}')
        self.net = MODELS.build(dict(student))
        if hasattr(self.net, 'enable_guidance_embedding'):
            self.net.enable_guidance_embedding()
        recorded = {}
        if teacher_ckpt is not None:
            load_net_weights(
                self.net, teacher_ckpt, 'teacher (stage 1)',
                check=lambda state: recorded.update(
                    type=check_stage1_parameterisation(
                        state, prediction_type, teacher_ckpt)))
        self.teacher = freeze(nn.ModuleDict(dict(
            net=copy.deepcopy(self.net))))
        self.lora_cfg = check_lora_cfg(student_lora)
        if self.lora_cfg is not None:
            add_lora(self.net, self.lora_cfg)
            tie_frozen(self.net, self.teacher.net)
            self.register_buffer(LORA_BUFFER, lora_record(self.lora_cfg))
        self.schedule = build_schedule(schedule)
        self.prediction_type = prediction_type or recorded.get(
            'type') or 'v'
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.register_buffer('num_steps', torch.tensor(num_steps))
        self._init_distillation(loss, p_drop, p_replace, ema,
                                feature_matching, default_sample)

    # -- state changes driven by the hook ----------------------------------
    @torch.no_grad()
    def start_stage(self, num_steps: int) -> None:
        """Begin a halving stage: teacher <- student (EMA if any), student
        EMA <- student with its update count reset (the EMA warm-up and
        ``start_iter`` count from the stage's start, as in a run started
        from the previous stage's student file), N <- ``num_steps``. A
        LoRA student's update is folded into the weights it shares with the
        teacher first (B <- 0), and the student restarts as the new
        teacher."""
        src = self.pick_net('ema')
        state = src.state_dict()
        if self.lora_cfg is not None:
            fold_lora(src)
            state = plain_keys(src.state_dict())
            if src is not self.net:
                self.net.load_state_dict(src.state_dict())
        # (a sharded student into a replicated teacher: gathered)
        load_matched(self.teacher.net, state)
        if self.net_ema is not None:
            self.net_ema.load_state_dict(self.net.state_dict())
        self.num_updates.zero_()
        self.num_steps.fill_(int(num_steps))

    def load_state_dict(self, state_dict: dict, strict: bool = True,
                        assign: bool = False):
        """As ``nn.Module.load_state_dict``; a student file
        (``student_{N}step.pth``: ``net.*`` and ``num_steps`` only) loads
        strictly too: the missing teacher (and EMA) weights are taken from
        ``net.*`` (the next stage's teacher is the student itself)."""
        state = dict(state_dict)
        net_keys = {k[4:]: v for k, v in state.items()
                    if k.startswith('net.')}
        if net_keys and not any(k.startswith('teacher.') for k in state):
            if is_lora_state(net_keys):
                net_keys = fold_lora_state(net_keys, recorded_scaling(
                    state, 'the LoRA student file'))
                state.update({f'net.{k}': v for k, v in net_keys.items()})
                plain = plain_keys(net_keys)
            else:
                plain = net_keys
            state.update({f'teacher.net.{k}': v for k, v in plain.items()})
        if net_keys and self.net_ema is not None and not any(
                k.startswith('net_ema.') for k in state):
            state.update({f'net_ema.{k}': v for k, v in net_keys.items()})
        if net_keys and 'num_updates' not in state:
            state['num_updates'] = self.num_updates.clone()
        return super().load_state_dict(state, strict=strict, assign=assign)

    # -- the stage-2 parts of the loss ------------------------------------
    def condition_provider(self) -> ConditionProvider:
        """From the student's ``condition_type`` (no teacher model object
        here): prompts (the data preprocessor's empty prompt) or class
        labels."""
        return build_condition_provider(
            getattr(self.net, 'condition_type', 'class'), self.num_classes,
            self.data_preprocessor)

    def sample_t(self, b: int, device: torch.device,
                 dtype: torch.dtype) -> Tensor:
        """t = i / N on the student grid, i ~ U{1, ..., N}."""
        n = self.host_value('num_steps')
        i = torch.randint(1, n + 1, (b, )).to(device)
        return i.to(dtype) / n

    @torch.no_grad()
    def teacher_target(self, z: Tensor, t: Tensor, y: Tensor,
                       w: Tensor) -> Tensor:
        """x~ = (z_t'' - (sigma_t''/sigma_t) z_t)
        / (alpha_t'' - (sigma_t''/sigma_t) alpha_t), z_t'' after two
        teacher DDIM steps (:meth:`teacher_two_steps`)."""
        z2, t2 = self.teacher_two_steps(z, t, y, w,
                                        self.host_value('num_steps'))
        return progressive_target(z, z2, *self.schedule.alpha_sigma(t),
                                  *self.schedule.alpha_sigma(t2))

    @torch.no_grad()
    def teacher_two_steps(self, z: Tensor, t: Tensor, y: Tensor, w: Tensor,
                          n: int) -> tuple:
        """z_t'' after two teacher DDIM steps t -> t - 1/(2n) -> t - 1/n.

        Returns:
            tuple: (z_t'', t'').
        """
        net = self.teacher.net
        t1 = (t - 0.5 / n).clamp_min(0)
        t2 = (t - 1.0 / n).clamp_min(0)
        a_t, s_t = self.schedule.alpha_sigma(t)
        a_1, s_1 = self.schedule.alpha_sigma(t1)
        a_2, s_2 = self.schedule.alpha_sigma(t2)
        z1 = ddim_step(z, self.x_hat(net, z, t, y, w), a_t, s_t, a_1, s_1)
        z2 = ddim_step(z1, self.x_hat(net, z1, t1, y, w), a_1, s_1, a_2, s_2)
        return z2, t2

    @torch.no_grad()
    def sample(self, labels, noise: Optional[Tensor] = None,
               steps: Optional[int] = None, **kwargs) -> Tensor:
        """:meth:`GuidedSamplingMixin.sample` with steps defaulting to the
        current N."""
        steps = int(self.num_steps) if steps is None and \
            'steps' not in self.default_sample else steps
        return GuidedSamplingMixin.sample(self, labels, noise, steps,
                                          **kwargs)
