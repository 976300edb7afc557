"""Test helper: makes one checkpoint write stall half-way so a test can kill
the process in the middle of the write. Imported via ``custom_imports``."""
import os
import time

from mmengine.hooks import Hook

from mmdistill.registry import HOOKS


class Stall:
    """Pickling it (inside ``torch.save``) creates ``marker`` and sleeps."""

    def __init__(self, marker, seconds=120):
        self.marker, self.seconds = marker, seconds

    def __reduce__(self):
        with open(self.marker, 'w') as f:
            f.write('writing')
        time.sleep(self.seconds)
        return (str, ('never reached', ))


@HOOKS.register_module()
class StallCheckpointHook(Hook):
    """Puts a :class:`Stall` into the checkpoint of iteration ``at``."""

    priority = 'LOWEST'

    def __init__(self, at, marker=None):
        self.at = at
        self.marker = marker or os.environ['STALL_MARKER']

    def before_save_checkpoint(self, runner, checkpoint):
        if runner.iter + 1 == self.at:
            checkpoint['stall'] = Stall(self.marker)
            os.sync()
