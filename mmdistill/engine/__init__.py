"""Runner, hooks, loops and optimizer wrappers."""
from .hooks import (AtomicCheckpointHook, PortableCheckpointHook,
                    ProgressiveDistillationHook, SampleGridHook)
from .loops import GenerativeLoop, GenerativeTestLoop, GenerativeValLoop
from .optim_wrapper import SafeAmpOptimWrapper, SafeOptimWrapper
from .runner import DistillRunner, init_cpu_dist, resume_allowlist

__all__ = [
    'AtomicCheckpointHook', 'DistillRunner', 'GenerativeLoop',
    'GenerativeTestLoop',
    'GenerativeValLoop', 'PortableCheckpointHook',
    'ProgressiveDistillationHook', 'SafeAmpOptimWrapper', 'SafeOptimWrapper',
    'SampleGridHook',
    'init_cpu_dist', 'resume_allowlist'
]
