"""Hooks: crash-safe checkpoints, portable hook state, the progressive
distillation schedule, sample grids during training, the training state's
memory per process."""
from .atomic_checkpoint import AtomicCheckpointHook
from .checkpoint_state import PortableCheckpointHook
from .progressive_distillation import ProgressiveDistillationHook
from .sample_grid import SampleGridHook
from .state_memory import StateMemoryHook

__all__ = [
    'AtomicCheckpointHook', 'PortableCheckpointHook',
    'ProgressiveDistillationHook', 'SampleGridHook', 'StateMemoryHook'
]
