"""Stage 2: progressive distillation (Salimans & Ho, ICLR 2022) of a
w-conditioned student (Meng et al., stage 2)."""
import copy

import torch
from mmengine.model import BaseModel
from torch import nn

from mmdistill.diffusion import (PREDICTION_TYPES, bcast, build_schedule,
                                 ddim_step, from_x, progressive_target, to_x)
from mmdistill.models.cfg_diffusion import EMAMixin, build_preprocessor
from mmdistill.models.sampling import GuidedSamplingMixin
from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from .conditioning import (ClassLabelConditions, ConditionReplacer,
                           TensorConditions)
from .guidance_distiller import build_feature_matching
from .teacher import (FrozenTeacherMixin, check_w_range, freeze,
                      load_net_weights, per_sample_uniform)


def check_power_of_two_ratio(n_start, n_end):
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


@MODELS.register_module()
class ProgressiveDistiller(FrozenTeacherMixin, EMAMixin, GuidedSamplingMixin,
                           BaseModel):
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

    Args:
        student (dict): denoiser config of the student (the stage-1
            architecture, ``guidance_embed=True``).
        teacher_ckpt (str | None): stage-1 checkpoint; its EMA weights (else
            ``net.*``) initialise both the teacher and the student.
        num_classes (int), image_shape (tuple): data description.
        num_steps (int): student steps N at the start (the teacher takes
            2N).
        schedule (dict), prediction_type (str): as the stage-1 model.
        w_min, w_max (float): guidance range.
        loss (dict): ``GuidedOutputL2Loss`` config.
        p_drop, p_replace (float): conditioning replacement.
        feature_matching (dict | None): feature matching pairs.
        ema (dict | None): student EMA (the paper uses none).
        default_sample (dict): ``sample()`` defaults; steps default to the
            current N.
    """

    def __init__(self, student, num_classes, image_shape, teacher_ckpt=None,
                 num_steps=32, schedule=dict(type='cosine'),
                 prediction_type='v', w_min=0.0, w_max=4.0,
                 loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
                 p_drop=0.0, p_replace=0.0, feature_matching=None, ema=None,
                 default_sample=dict(guidance=2.0, sampler='ddim'),
                 data_preprocessor=dict(type='DiffusionDataPreprocessor'),
                 init_cfg=None):
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        check_w_range(w_min, w_max)
        if prediction_type not in PREDICTION_TYPES:
            raise UserError(f'prediction_type must be one of '
                            f'{PREDICTION_TYPES}, got {prediction_type!r}')
        if not isinstance(num_steps, int) or num_steps < 1:
            raise UserError(f'num_steps must be a positive integer, got '
                            f'{num_steps!r}')
        self.net = MODELS.build(dict(student))
        if hasattr(self.net, 'enable_guidance_embedding'):
            self.net.enable_guidance_embedding()
        if teacher_ckpt is not None:
            load_net_weights(self.net, teacher_ckpt, 'teacher (stage 1)')
        self.teacher = freeze(nn.ModuleDict(dict(
            net=copy.deepcopy(self.net))))
        self.schedule = build_schedule(schedule)
        self.prediction_type = prediction_type
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.w_min, self.w_max = float(w_min), float(w_max)
        self.loss_fn = MODELS.build(loss)
        if getattr(self.net, 'condition_type', 'class') == 'text':
            provider = TensorConditions(
                self.data_preprocessor.null_embedding())
        else:
            provider = ClassLabelConditions(num_classes)
        self.replacer = ConditionReplacer(provider,
                                          p_drop, p_replace)
        self.register_buffer('num_steps', torch.tensor(num_steps))
        self.default_sample = dict(default_sample)
        self._init_ema(ema)
        self.feature_loss = build_feature_matching(feature_matching, self,
                                                   self.teacher)

    # -- state changes driven by the hook ----------------------------------
    @torch.no_grad()
    def start_stage(self, num_steps):
        """Begin a halving stage: teacher <- student (EMA if any), student
        EMA <- student, N <- ``num_steps``."""
        src = self.pick_net('ema')
        self.teacher.net.load_state_dict(src.state_dict())
        if self.net_ema is not None:
            self.net_ema.load_state_dict(self.net.state_dict())
        self.num_steps.fill_(int(num_steps))

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """As ``nn.Module.load_state_dict``; a student file
        (``student_{N}step.pth``: ``net.*`` and ``num_steps`` only) loads
        strictly too: the missing teacher (and EMA) weights are taken from
        ``net.*`` (the next stage's teacher is the student itself)."""
        state = dict(state_dict)
        net_keys = {k[4:]: v for k, v in state.items()
                    if k.startswith('net.')}
        if net_keys and not any(k.startswith('teacher.') for k in state):
            state.update({f'teacher.net.{k}': v for k, v in net_keys.items()})
        if net_keys and self.net_ema is not None and not any(
                k.startswith('net_ema.') for k in state):
            state.update({f'net_ema.{k}': v for k, v in net_keys.items()})
        if net_keys and 'num_updates' not in state:
            state['num_updates'] = self.num_updates.clone()
        return super().load_state_dict(state, strict=strict, assign=assign)

    # -- model math --------------------------------------------------------
    def x_hat(self, net, z, t, y, w):
        """x_hat = to_x(net(z, t, y, w))."""
        return to_x(net(z, t, y, w), z, *self.schedule.alpha_sigma(t),
                    self.prediction_type)

    def guided_x_fn(self, labels, w, sample_model='ema'):
        """x_fn(z, t) = x_S(z, t, y, w): one evaluation per step."""
        net = self.pick_net(sample_model)
        return lambda z, t: self.x_hat(net, z, t, labels, w)

    @torch.no_grad()
    def sample(self, labels, noise=None, steps=None, **kwargs):
        """:meth:`GuidedSamplingMixin.sample` with steps defaulting to the
        current N."""
        steps = int(self.num_steps) if steps is None and \
            'steps' not in self.default_sample else steps
        return GuidedSamplingMixin.sample(self, labels, noise, steps,
                                          **kwargs)

    @torch.no_grad()
    def teacher_two_steps(self, z, t, y, w, n):
        """z_t'' after two teacher DDIM steps t -> t - 1/(2n) -> t - 1/n."""
        net = self.teacher.net
        t1 = (t - 0.5 / n).clamp_min(0)
        t2 = (t - 1.0 / n).clamp_min(0)
        a_t, s_t = self.schedule.alpha_sigma(t)
        a_1, s_1 = self.schedule.alpha_sigma(t1)
        a_2, s_2 = self.schedule.alpha_sigma(t2)
        z1 = ddim_step(z, self.x_hat(net, z, t, y, w), a_t, s_t, a_1, s_1)
        z2 = ddim_step(z1, self.x_hat(net, z1, t1, y, w), a_1, s_1, a_2, s_2)
        return z2, t2

    def ddp_ignored_names(self):
        return EMAMixin.ddp_ignored_names(self) + self.teacher_ignored_names()

    def loss(self, x, y):
        b, n = x.shape[0], self.host_value('num_steps')
        i = torch.randint(1, n + 1, (b, )).to(x.device)
        t = i.to(x.dtype) / n
        w = per_sample_uniform(b, self.w_min, self.w_max, x.device)
        eps = torch.randn_like(x)
        a_t, s_t = self.schedule.alpha_sigma(t)
        z = bcast(a_t, x) * x + bcast(s_t, x) * eps
        y = self.replacer(y)
        fl = self.feature_loss
        if fl is not None:
            with fl.recorders[1].record() as t_feats:
                z2, t2 = self.teacher_two_steps(z, t, y, w, n)
        else:
            z2, t2 = self.teacher_two_steps(z, t, y, w, n)
        target_x = progressive_target(z, z2, a_t, s_t,
                                      *self.schedule.alpha_sigma(t2))
        if fl is not None:
            with fl.recorders[0].record() as s_feats:
                out = self.net(z, t, y, w)
        else:
            out = self.net(z, t, y, w)
        target = from_x(target_x, z, a_t, s_t, self.prediction_type)
        losses = dict(loss=self.loss_fn(out, target, a_t, s_t,
                                        self.prediction_type))
        if fl is not None:
            losses['loss_feat'] = fl(s_feats, t_feats)
        return losses
