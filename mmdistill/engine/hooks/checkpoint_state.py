"""Portable checkpoints and exact resume.

mmengine stores ``HistoryBuffer`` objects and NumPy values in its checkpoints,
which ``torch.load(weights_only=True)`` refuses. Before a checkpoint is written
this hook turns them into tensors and plain Python values (so every file the
run writes loads with ``weights_only=True``, by ``tools/test.py`` or as a
teacher), stores the RNG states, and reverses both when a run resumes: the
resumed run then draws the same noise, times and batches as an uninterrupted
one.
"""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from mmdistill.registry import HOOKS

_HB = '__history_buffer__'


def to_plain(obj):
    """Recursively replace HistoryBuffer / NumPy values by tensors and plain
    Python values."""
    if isinstance(obj, HistoryBuffer):
        return {_HB: True, 'log': torch.from_numpy(np.asarray(
            obj._log_history, dtype=np.float64)), 'count': torch.from_numpy(
                np.asarray(obj._count_history, dtype=np.float64)),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, to_plain(v)) for k, v in obj.items()) \
            if type(obj) is not dict else {k: to_plain(v)
                                           for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj):
    """Inverse of :func:`to_plain` for HistoryBuffers."""
    if isinstance(obj, dict):
        if obj.get(_HB):
            return HistoryBuffer(obj['log'].numpy().tolist(),
                                 obj['count'].numpy().tolist(),
                                 obj['max_length'])
        return {k: from_plain(v) for k, v in obj.items()}
    return obj


@HOOKS.register_module()
class PortableCheckpointHook(Hook):
    """Make checkpoints loadable with ``weights_only=True`` and carry the RNG
    states for an exact resume. Put it in ``custom_hooks`` (the shipped
    ``default_runtime.py`` does)."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = to_plain(checkpoint[key])
        rng = dict(torch=torch.get_rng_state(),
                   numpy=to_plain(np.random.get_state()[1]),
                   numpy_pos=int(np.random.get_state()[2]),
                   python=str(random.getstate()))
        if torch.cuda.is_available():
            rng['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = rng

    def after_load_checkpoint(self, runner, checkpoint):
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain(checkpoint['message_hub'])
        rng = checkpoint.get('rng_state')
        if rng is None or not getattr(runner, '_resume', False):
            return
        torch.set_rng_state(rng['torch'])
        np.random.set_state(('MT19937', np.asarray(rng['numpy'].numpy(),
                                                   dtype=np.uint32),
                             rng['numpy_pos'], 0, 0.0))
        import ast
        st = ast.literal_eval(rng['python'])
        random.setstate((st[0], tuple(st[1]), st[2]))
        if 'cuda' in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng['cuda'])
