"""Per-sample replacement of conditioning signals during distillation.

For each sample independently, with u ~ U[0, 1):

    c' = null(c)           if u < p_drop
    c' = other(c)          if p_drop <= u < p_drop + p_replace
    c' = c                 otherwise

``null`` gives the unconditional condition (the null class, an empty
prompt's embedding) and ``other`` a random condition different from ``c``
(Kim et al., "Random Conditioning", CVPR 2025). The teacher's target is
computed with the replaced condition too, so the student learns the teacher
over the whole condition space instead of only on (image, true label)
pairs.

The replacement works on any condition tensor whose first dimension is the
batch (class labels (B,), text embeddings (B, L, D), ...): plug in a
provider with ``null(cond)`` and ``other(cond, generator)``
(:mod:`mmdistill.models.conditions`, re-exported here).
"""
import torch
from torch import Tensor

from mmdistill.models.conditions import (ClassLabelConditions,
                                         ConditionProvider, Generator,
                                         TensorConditions,
                                         build_condition_provider)
from mmdistill.utils import UserError

__all__ = [
    'ClassLabelConditions', 'ConditionProvider', 'ConditionReplacer',
    'TensorConditions', 'build_condition_provider'
]


class ConditionReplacer:
    """Drop conditions to null with probability ``p_drop`` and replace them
    by a random other condition with probability ``p_replace`` (per sample,
    mutually exclusive; see the module docstring).

    Args:
        provider: object with ``null(cond)`` and ``other(cond, generator)``.
        p_drop: probability of the null condition.
        p_replace: probability of a random other condition.
    """

    def __init__(self, provider: ConditionProvider, p_drop: float = 0.0,
                 p_replace: float = 0.0) -> None:
        for name, p in (('p_drop', p_drop), ('p_replace', p_replace)):
            if not 0.0 <= float(p) <= 1.0:
                raise UserError(f'{name} must be in [0, 1], got {p}')
        if p_drop + p_replace > 1.0:
            raise UserError(f'p_drop + p_replace must be <= 1, got '
                            f'{p_drop} + {p_replace}')
        self.provider = provider
        self.p_drop, self.p_replace = float(p_drop), float(p_replace)

    @property
    def active(self) -> bool:
        """Whether any condition is ever replaced."""
        return self.p_drop > 0 or self.p_replace > 0

    def __call__(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """Return the per-sample replaced conditions (same shape)."""
        if not self.active:
            return cond
        b = cond.shape[0]
        u = torch.rand(b, generator=generator).to(cond.device)
        drop = u < self.p_drop
        repl = (u >= self.p_drop) & (u < self.p_drop + self.p_replace)
        shape = (b, ) + (1, ) * (cond.ndim - 1)
        out = torch.where(drop.view(shape), self.provider.null(cond), cond)
        return torch.where(repl.view(shape),
                           self.provider.other(cond, generator), out)
