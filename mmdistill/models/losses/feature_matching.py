"""Feature matching between named student and teacher modules."""
from typing import Callable, ContextManager, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from .feature_recorder import FeatureRecorder

ROLES = ('student', 'teacher')


@MODELS.register_module()
class FeatureMatchingLoss(nn.Module):
    """sum_k weight_k * mean((f_s^k - f_t^k)^2) over recorded features.

    Each pair names a student module and a teacher module (names relative to
    the distiller and to its ``teacher``, e.g. ``'net.mid.0'``); features
    must have the same shape. The distiller records them with forward hooks
    (:class:`FeatureRecorder`, ``student_recorder`` / ``teacher_recorder``)
    during its student and teacher forwards::

        with feature_loss.record('teacher') as t_feats:
            target = teacher(...)
        with feature_loss.record('student') as s_feats:
            out = student(...)
        loss = feature_loss(s_feats, t_feats)

    Config (inside a distiller)::

        feature_matching=dict(pairs=[
            dict(student='net.mid.0', teacher='net.mid.0', weight=0.1)])

    Args:
        pairs: ``dict(student=..., teacher=..., weight=1.0)`` per pair.
    """

    def __init__(self, pairs: List[dict]) -> None:
        super().__init__()
        if not pairs:
            raise UserError('feature_matching needs at least one pair '
                            "dict(student='net.mid.0', teacher='net.mid.0')")
        self.pairs = []
        for p in pairs:
            p = dict(p)
            if 'student' not in p or 'teacher' not in p:
                raise UserError('each feature_matching pair needs student= '
                                f'and teacher= module names, got {p}')
            self.pairs.append((p['student'], p['teacher'],
                               float(p.get('weight', 1.0))))
        self.student_recorder: Optional[FeatureRecorder] = None
        self.teacher_recorder: Optional[FeatureRecorder] = None

    def attach(self, student_root: nn.Module,
               teacher_root: nn.Module) -> 'FeatureMatchingLoss':
        """Hook the named modules of the student and teacher roots (into
        ``student_recorder`` and ``teacher_recorder``)."""
        self.student_recorder = FeatureRecorder(
            student_root, [s for s, _, _ in self.pairs], 'student')
        self.teacher_recorder = FeatureRecorder(
            teacher_root, [t for _, t, _ in self.pairs], 'teacher')
        return self

    def record(self, role: str) -> ContextManager[Dict[str, Tensor]]:
        """``with loss.record('student' | 'teacher') as feats:`` records
        that side's features of the forwards inside the block into
        ``feats`` (name -> feature)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        recorder = getattr(self, f'{role}_recorder')
        if recorder is None:
            raise UserError('FeatureMatchingLoss.attach() the student and '
                            'teacher before recording')
        return recorder.record()

    def forward(self, student_feats: Dict[str, Tensor],
                teacher_feats: Dict[str, Tensor],
                combine: Optional[Callable[[Tensor, Tensor], Tensor]] = None
                ) -> Tensor:
        """Weighted MSE over the pairs.

        Args:
            student_feats: name -> student feature (B, ...).
            teacher_feats: name -> teacher feature (B, ...), or (2B, ...)
                from a batched cond + uncond call, which ``combine(f_c,
                f_u)`` (e.g. the CFG combination) merges.

        Returns:
            The scalar loss.
        """
        total = 0.0
        for s, t, w in self.pairs:
            if s not in student_feats or t not in teacher_feats:
                raise UserError(f'feature_matching: no feature recorded for '
                                f'{s!r}/{t!r} (is the module used in the '
                                'forward pass?)')
            fs, ft = student_feats[s], teacher_feats[t].detach()
            if ft.shape[0] == 2 * fs.shape[0] and combine is not None:
                ft = combine(*ft.chunk(2))
            if fs.shape != ft.shape:
                raise UserError(f'feature_matching: student {s!r} '
                                f'{tuple(fs.shape)} and teacher {t!r} '
                                f'{tuple(ft.shape)} differ in shape')
            total = total + w * F.mse_loss(fs, ft.to(fs.dtype))
        return total if torch.is_tensor(total) else torch.zeros(())
