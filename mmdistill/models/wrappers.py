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


@MODEL_WRAPPERS.register_module()
class DistillFSDP(nn.Module):
    """Sharded data parallel training of a distiller (torch FSDP2,
    ``fully_shard``), on GPUs (NCCL) and on the CPU (gloo).

    The student ``net`` and its EMA ``net_ema`` are sharded over all ranks
    (each rank keeps 1/R of their weights, gradients and Adam moments;
    units: :func:`~mmdistill.models.sharding.shard_units`). The frozen
    teacher is replicated (every rank holds it, e.g. in bf16 through the
    adapters' ``torch_dtype``) or, with ``shard_teacher=True``, sharded
    too and all-gathered unit by unit while it runs. Gradients are
    reduce-scattered in backward, as DDP all-reduces them, so a step equals
    the DDP step up to float summation order.

    Checkpoints are written gathered (full tensors, the unsharded format:
    ``tools/test.py``, ``sample.py`` and ``export.py`` read them as any
    other) and a resume distributes them onto the shards again. A LoRA
    student is not sharded (its trained state is small and its base is the
    teacher's tensors): use DDP with it.

    Config: ``model_wrapper_cfg = dict(type='DistillFSDP',
    shard_teacher=False)`` with ``tools/dist_train.sh``.

    Args:
        module (nn.Module): the distiller.
        shard_teacher (bool): shard the frozen teacher as well.
        reshard_after_forward (bool): free the gathered weights of a unit
            after its forward (and gather them again in backward).
    """

    def __init__(self, module: nn.Module, shard_teacher: bool = False,
                 reshard_after_forward: bool = True, **kwargs) -> None:
        super().__init__()
        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh

        from mmdistill.models.sharding import fully_shard_network
        from mmdistill.utils import UserError
        if kwargs:
            raise UserError(f'DistillFSDP got unknown options {sorted(kwargs)}'
                            '; it takes shard_teacher, reshard_after_forward')
        if getattr(module, 'lora_cfg', None) is not None:
            raise UserError('a LoRA student (student_lora) is not sharded: '
                            'drop model_wrapper_cfg=DistillFSDP and train it '
                            'with DDP (its trained state is small)')
        if not hasattr(module, 'net') or not hasattr(module, 'teacher'):
            raise UserError('DistillFSDP shards a distiller (a model with '
                            '`net` and `teacher`); train other models with '
                            'DistillDataParallel')
        if not dist.is_initialized():
            raise UserError('DistillFSDP needs a distributed launch: '
                            'tools/dist_train.sh CONFIG NUM_PROCS')
        device = 'cuda' if next(module.parameters()).is_cuda else 'cpu'
        mesh = init_device_mesh(device, (dist.get_world_size(), ))
        # every rank starts from rank 0's tensors (as DDP does), then keeps
        # its shard of them
        from mmengine.dist import broadcast
        for tensor in module.state_dict().values():
            broadcast(tensor)
        self.module = module
        self.shard_teacher = bool(shard_teacher)
        for name in ('net', 'net_ema'):
            net = getattr(module, name, None)
            if net is not None:
                fully_shard_network(net, mesh, reshard_after_forward)
        if self.shard_teacher:  # the network the distiller calls
            fully_shard_network(module.teacher.net, mesh,
                                reshard_after_forward)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """As the single-process ``train_step``: preprocess, loss, update
        (gradients reduce-scattered in backward), then
        ``after_train_update()`` (EMA on the shards)."""
        m = self.module
        with optim_wrapper.optim_context(self):
            data = m.data_preprocessor(data, training=True)
            losses = m._run_forward(data, mode='loss')
        parsed, log_vars = m.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        hook = getattr(m, 'after_train_update', None)
        if hook is not None:
            hook()
        return log_vars

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def full_state_dict(self) -> Dict[str, torch.Tensor]:
        """The distiller's state dict with the shards gathered (every rank
        calls it)."""
        from mmdistill.models.sharding import full_state_dict
        return full_state_dict(self.module)
