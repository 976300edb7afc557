"""Hooks: crash-safe checkpoints, portable hook state, the progressive
distillation schedule, sample grids during training."""
from .atomic_checkpoint import AtomicCheckpointHook
from .checkpoint_state import PortableCheckpointHook
from .progressive_distillation import ProgressiveDistillationHook
from .sample_grid import SampleGridHook

__all__ = [
    'AtomicCheckpointHook', 'PortableCheckpointHook',
    'ProgressiveDistillationHook', 'SampleGridHook'
]
