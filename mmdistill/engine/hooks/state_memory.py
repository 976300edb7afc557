"""Record the training state's memory per process (weights, EMA,
gradients, optimizer moments; :func:`mmdistill.utils.memory.
measured_state_bytes`), e.g. to compare DDP with sharded training."""
import json
import os.path as osp
from typing import Any

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmdistill.registry import HOOKS
from mmdistill.utils.memory import measured_state_bytes


@HOOKS.register_module()
class StateMemoryHook(Hook):
    """After the first optimizer step, count this process's training state
    (its shards, for a sharded model) and write it to
    ``work_dir/state_memory_rank{R}.json`` (bytes by part); the total in MiB
    is logged as ``train/state_mib`` from then on.

    Gradients are counted as they are after the step (mmengine's optimizer
    wrapper frees them: None), so the figure is weights + EMA + moments.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self.state = None

    def after_train_iter(self, runner: Any, batch_idx: int,
                         data_batch: Any = None, outputs: Any = None) -> None:
        if self.state is None:
            model = getattr(runner.model, 'module', runner.model)
            ow = runner.optim_wrapper
            self.state = measured_state_bytes(model, getattr(ow, 'optimizer',
                                                             None))
            path = osp.join(runner.work_dir,
                            f'state_memory_rank{get_rank()}.json')
            with open(path, 'w') as f:
                json.dump(self.state, f)
        runner.message_hub.update_scalar('train/state_mib',
                                         self.state['total'] / 2**20)
