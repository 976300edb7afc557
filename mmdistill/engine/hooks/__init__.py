"""Hooks: crash-safe checkpoints, portable hook state, the progressive
distillation schedule."""
from .atomic_checkpoint import AtomicCheckpointHook
from .checkpoint_state import PortableCheckpointHook
from .progressive_distillation import ProgressiveDistillationHook

__all__ = [
    'AtomicCheckpointHook', 'PortableCheckpointHook',
    'ProgressiveDistillationHook'
]
