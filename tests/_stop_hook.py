"""A hook that ends the process abruptly at a given iteration (simulates a
kill) for the resume tests; imported through ``custom_imports``."""
import os

from mmengine.hooks import Hook

from mmdistill.registry import HOOKS


@HOOKS.register_module()
class ExitAtIterHook(Hook):
    priority = 'LOWEST'  # after the checkpoint hooks

    def __init__(self, exit_after):
        self.exit_after = exit_after

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.exit_after:
            os._exit(3)
