"""Sharded training state (torch FSDP2, ``fully_shard``): helpers that let
the distillers, the optimizer guard and the checkpoints work the same on
sharded and unsharded networks.

A sharded network's parameters are ``DTensor``s split along dim 0 over the
ranks (each rank stores 1/R of every weight, of its gradient, of its Adam
moments and of its EMA). Checkpoints are written *gathered*: every sharded
tensor is all-gathered into the full tensor (a collective: all ranks call
:func:`full_state_dict` in the same order), so the file is the one an
unsharded run writes and every tool reads it; loading distributes the full
tensors back onto the shards (:func:`match_state`).
"""
from collections import OrderedDict
from typing import Dict, Iterable, List

import torch
import torch.distributed as dist
from torch import Tensor, nn

try:
    from torch.distributed.tensor import DTensor, distribute_tensor
except ImportError:  # torch < 2.4
    DTensor = None
    distribute_tensor = None


def is_dtensor(t) -> bool:
    """Whether ``t`` is a (sharded) ``DTensor``."""
    return DTensor is not None and isinstance(t, DTensor)


def is_sharded(module: nn.Module) -> bool:
    """Whether any parameter of ``module`` is sharded."""
    return any(is_dtensor(p) for p in module.parameters())


def full_tensor(t):
    """The full tensor of a ``DTensor`` (an all-gather), else ``t``."""
    return t.full_tensor() if is_dtensor(t) else t


def full_state_dict(module: nn.Module) -> Dict[str, Tensor]:
    """``module.state_dict()`` with every sharded tensor gathered (call on
    every rank); an ``OrderedDict`` with the original's ``_metadata``."""
    state = module.state_dict()
    out = OrderedDict((k, full_tensor(v)) for k, v in state.items())
    meta = getattr(state, '_metadata', None)
    if meta is not None:
        out._metadata = meta
    return out


def match_state(module: nn.Module,
                state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """``state`` made loadable into ``module``: a full tensor whose target is
    sharded is distributed like the target, a sharded one whose target is
    not is gathered (call on every rank)."""
    own = module.state_dict()
    out = {}
    for k, v in state.items():
        target = own.get(k)
        if is_dtensor(target) and not is_dtensor(v):
            v = distribute_tensor(v.to(target.dtype), target.device_mesh,
                                  target.placements)
        elif not is_dtensor(target) and is_dtensor(v):
            v = v.full_tensor()
        out[k] = v
    return out


def load_matched(module: nn.Module, state: Dict[str, Tensor],
                 strict: bool = True):
    """``module.load_state_dict`` of :func:`match_state` (state)."""
    return module.load_state_dict(match_state(module, state), strict=strict)


def full_optimizer_state(state):
    """An optimizer state dict with every ``DTensor`` gathered (nested
    dicts and lists walked in order; call on every rank)."""
    if isinstance(state, dict):
        return {k: full_optimizer_state(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(full_optimizer_state(v) for v in state)
    return full_tensor(state)


def shard_optimizer_state(optimizer: torch.optim.Optimizer,
                          state_dict: dict) -> dict:
    """A gathered optimizer state dict (torch's format: ``state`` keyed by
    the parameter's index over ``param_groups``) with each full moment
    distributed like its (sharded) parameter."""
    params: List[Tensor] = [p for g in optimizer.param_groups
                            for p in g['params']]
    if not any(is_dtensor(p) for p in params):
        return state_dict
    state = {}
    for idx, slots in state_dict.get('state', {}).items():
        p = params[int(idx)]
        state[idx] = {
            k: distribute_tensor(v.to(p.dtype), p.device_mesh, p.placements)
            if is_dtensor(p) and torch.is_tensor(v) and v.shape == p.shape
            else v for k, v in slots.items()}
    return dict(state_dict, state=state)


def global_norm(tensors: Iterable[Tensor]) -> float:
    """sqrt(sum of squares) over ``tensors``, sharded ones summed over the
    ranks (their local shards partition them)."""
    local, sharded = [], False
    for t in tensors:
        if is_dtensor(t):
            t, sharded = t.to_local(), True
        local.append(t.detach().float().pow(2).sum())
    if not local:
        return 0.0
    sq = torch.stack(local).sum()
    if sharded and dist.is_initialized():
        if dist.get_backend() == 'nccl':
            sq = sq.cuda()
        dist.all_reduce(sq)
    return float(sq.sqrt())


def shard_units(net: nn.Module) -> List[nn.Module]:
    """The FSDP units of a network: the children of its outermost
    ``nn.ModuleList``s (UNet down/up blocks, transformer blocks), each
    all-gathered only while it runs."""
    units, taken = [], []
    for name, m in net.named_modules():
        if any(name.startswith(t + '.') for t in taken):
            continue
        if isinstance(m, nn.ModuleList):
            units.extend(m.children())
            taken.append(name)
    return units


def fully_shard_network(net: nn.Module, mesh, reshard_after_forward=True
                        ) -> nn.Module:
    """``fully_shard`` every unit of :func:`shard_units`, then the root (the
    rest: embeddings, input/output layers, the guidance embedding)."""
    from torch.distributed.fsdp import fully_shard
    for unit in shard_units(net):
        if any(True for _ in unit.parameters()):
            fully_shard(unit, mesh=mesh,
                        reshard_after_forward=reshard_after_forward)
    fully_shard(net, mesh=mesh, reshard_after_forward=reshard_after_forward)
    return net
