"""DDP wrapper that works on CPU (gloo) and GPUs (NCCL)."""
from typing import Dict, List, Optional, Union

import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from torch import nn

from mmdistill.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class DistillDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` with three changes:

    - a module on the CPU gets ``device_ids=None`` (mmengine always passes
      the local rank, which DDP rejects for CPU modules);
    - parameters and buffers the module lists in ``ddp_ignored_names()``
      (a frozen teacher, EMA weights) are neither synchronised nor broadcast;
    - after each optimizer step the module's ``after_train_update()`` runs
      (EMA, counters), as in the single-process ``train_step``.
    """

    def __init__(self,
                 module: nn.Module,
                 device_ids: Optional[List[int]] = None,
                 **kwargs) -> None:
        p = next(module.parameters(), None)
        if p is None or not p.is_cuda:
            device_ids = None
        ignored = getattr(module, 'ddp_ignored_names', lambda: [])()
        if ignored:
            torch.nn.parallel.DistributedDataParallel.\
                _set_params_and_buffers_to_ignore_for_model(module, ignored)
        super().__init__(module=module, device_ids=device_ids, **kwargs)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        log_vars = super().train_step(data, optim_wrapper)
        hook = getattr(self.module, 'after_train_update', None)
        if hook is not None:
            hook()
        return log_vars
