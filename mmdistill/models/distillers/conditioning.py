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
provider with ``null(cond)`` and ``other(cond, generator)``.
"""
import torch

from mmdistill.utils import UserError


class ClassLabelConditions:
    """Condition provider for class labels; label ``num_classes`` is null.

    Args:
        num_classes (int): number of real classes.
    """

    def __init__(self, num_classes):
        self.num_classes = int(num_classes)

    def null(self, cond):
        """The null class for every sample."""
        return torch.full_like(cond, self.num_classes)

    def other(self, cond, generator=None):
        """A uniformly random real class different from ``cond``:
        (c + k) mod K with k ~ U{1, ..., K-1}; a null label gets any real
        class."""
        k = self.num_classes
        if k < 2:
            return torch.randint(0, k, cond.shape, generator=generator,
                                 device=cond.device)
        shift = torch.randint(1, k, cond.shape, generator=generator,
                              device=cond.device)
        any_cls = torch.randint(0, k, cond.shape, generator=generator,
                                device=cond.device)
        return torch.where(cond >= k, any_cls, (cond + shift) % k)


class TensorConditions:
    """Condition provider for embedding tensors (B, ...): ``null_embedding``
    (broadcastable to one sample) is the unconditional embedding; ``other``
    takes the condition of another sample of the batch (a random
    derangement when B > 1; a pool of embeddings may be given instead).

    Args:
        null_embedding (Tensor): embedding of the empty condition.
        pool (Tensor, optional): (P, ...) embeddings to draw others from.
    """

    def __init__(self, null_embedding, pool=None):
        self.null_embedding, self.pool = null_embedding, pool

    def null(self, cond):
        return self.null_embedding.to(cond).expand_as(cond).clone()

    def other(self, cond, generator=None):
        b = cond.shape[0]
        if self.pool is not None:
            idx = torch.randint(0, len(self.pool), (b, ), generator=generator)
            return self.pool[idx].to(cond)
        if b < 2:
            return cond.clone()
        shift = torch.randint(1, b, (b, ), generator=generator)
        return cond[(torch.arange(b) + shift) % b]


class ConditionReplacer:
    """Drop conditions to null with probability ``p_drop`` and replace them
    by a random other condition with probability ``p_replace`` (per sample,
    mutually exclusive; see the module docstring).

    Args:
        provider: object with ``null(cond)`` and ``other(cond, generator)``.
        p_drop (float): probability of the null condition.
        p_replace (float): probability of a random other condition.
    """

    def __init__(self, provider, p_drop=0.0, p_replace=0.0):
        for name, p in (('p_drop', p_drop), ('p_replace', p_replace)):
            if not 0.0 <= float(p) <= 1.0:
                raise UserError(f'{name} must be in [0, 1], got {p}')
        if p_drop + p_replace > 1.0:
            raise UserError(f'p_drop + p_replace must be <= 1, got '
                            f'{p_drop} + {p_replace}')
        self.provider = provider
        self.p_drop, self.p_replace = float(p_drop), float(p_replace)

    @property
    def active(self):
        return self.p_drop > 0 or self.p_replace > 0

    def __call__(self, cond, generator=None):
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
