"""Condition providers: the null, other and random conditions of a
condition type.

A provider gives, for a batch of conditions ``cond`` (first dimension the
batch: class labels (B,), text embeddings (B, L, D), ...):

- ``null(cond)``: the unconditional condition (the null class, the empty
  prompt's embedding), used by classifier-free guidance;
- ``other(cond, generator)``: a random real condition different from each
  sample's own (conditioning replacement during distillation);
- ``random(cond, generator)``: a random real condition.

:func:`build_condition_provider` is the one place that maps a condition
type to its provider; ``CFGDiffusion.condition_provider()`` and the
distillers use it.
"""
from typing import Any, Optional, Protocol, Union

import torch
from torch import Tensor

Generator = Optional[torch.Generator]


class ConditionProvider(Protocol):
    """What the conditioning replacement and the CFG models need of a
    condition type."""

    def null(self, cond: Tensor) -> Tensor:
        """The unconditional condition for every sample of ``cond``."""

    def other(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """A random real condition different from each sample's own."""

    def random(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """A random real condition per sample."""


class ClassLabelConditions:
    """Condition provider for class labels; label ``num_classes`` is null.

    Args:
        num_classes: number of real classes.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)

    def null(self, cond: Tensor) -> Tensor:
        """The null class for every sample."""
        return torch.full_like(cond, self.num_classes)

    def random(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """A uniformly random real class per sample, k ~ U{0, ..., K-1}
        (may equal ``cond``)."""
        return torch.randint(0, self.num_classes, cond.shape,
                             generator=generator, device=cond.device)

    def other(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """A uniformly random real class different from ``cond``:
        (c + k) mod K with k ~ U{1, ..., K-1}; a null label gets any real
        class (:meth:`random`)."""
        k = self.num_classes
        if k < 2:
            return self.random(cond, generator)
        shift = torch.randint(1, k, cond.shape, generator=generator,
                              device=cond.device)
        any_cls = self.random(cond, generator)
        return torch.where(cond >= k, any_cls, (cond + shift) % k)


class TensorConditions:
    """Condition provider for embedding tensors (B, ...): ``null_embedding``
    (broadcastable to one sample) is the unconditional embedding; ``other``
    takes the condition of another sample of the batch (a random
    derangement when B > 1; a pool of embeddings may be given instead).

    Args:
        null_embedding: embedding of the empty condition.
        pool: (P, ...) embeddings to draw others from.
    """

    def __init__(self, null_embedding: Tensor,
                 pool: Optional[Tensor] = None) -> None:
        self.null_embedding, self.pool = null_embedding, pool

    def null(self, cond: Tensor) -> Tensor:
        """The null embedding for every sample."""
        return self.null_embedding.to(cond).expand_as(cond).clone()

    def other(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """Sample i gets the condition of sample (i + k_i) mod B,
        k_i ~ U{1, ..., B-1} (itself when B = 1), or a random pool entry."""
        b = cond.shape[0]
        if self.pool is not None:
            idx = torch.randint(0, len(self.pool), (b, ), generator=generator)
            return self.pool[idx].to(cond)
        if b < 2:
            return cond.clone()
        shift = torch.randint(1, b, (b, ), generator=generator)
        return cond[(torch.arange(b) + shift) % b]

    def random(self, cond: Tensor, generator: Generator = None) -> Tensor:
        """A random real condition: the real conditions at hand are the
        other samples' (or the pool), so this is :meth:`other`."""
        return self.other(cond, generator)


def build_condition_provider(
        condition_type: str = 'class', num_classes: Optional[int] = None,
        data_preprocessor: Any = None
) -> Union[ClassLabelConditions, TensorConditions]:
    """The condition provider of a model: the one place that maps a
    condition type to its provider.

    Args:
        condition_type: ``'text'`` for prompt embeddings (the network's
            ``condition_type``); anything else means class labels.
        num_classes: number of real classes (class labels).
        data_preprocessor: has ``null_embedding()``, the empty prompt's
            embedding (text).

    Returns:
        :class:`TensorConditions` with the empty prompt's embedding (text)
        or :class:`ClassLabelConditions` of ``num_classes``.
    """
    if condition_type == 'text':
        return TensorConditions(data_preprocessor.null_embedding())
    return ClassLabelConditions(num_classes)
