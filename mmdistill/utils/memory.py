"""The memory model of distillation training: the bytes of the training
state (weights, gradients, optimizer moments, EMA) per process, predicted
from parameter counts and measured from the live tensors.

Per process, with N_T teacher weights stored in b_T bytes each, N_S trained
student weights (float32), N_F frozen student weights that are *not* the
teacher's tensors, an optimizer with k float32 slots per weight (Adam:
k = 2) and R ranks sharing the trained state (FSDP; R = 1 for one process or
DDP, where every rank holds everything):

    teacher  = b_T N_T            (/ R if the teacher is sharded too)
    student  = 4 N_S / R  +  b_T N_F
    grads    = 4 N_S / R
    moments  = 4 k N_S / R
    EMA      = 4 N_S / R          (0 without an EMA)

A full student has N_S = N_T, N_F = 0 (it is a copy: 20 bytes per weight
with Adam and an EMA, plus the teacher's b_T). A LoRA student trains only
its adapters and guidance embedding (N_S << N_T) and shares the teacher's
frozen tensors (N_F = 0), so its state is the teacher's plus 20 bytes per
adapter weight. Activations (batch-dependent) are not part of the state.
"""
from typing import Dict, Iterable, Optional

import torch
from torch import nn

#: bytes per element of the storage dtypes.
DTYPE_BYTES = {'float32': 4, 'fp32': 4, 'bfloat16': 2, 'bf16': 2,
               'float16': 2, 'fp16': 2}


def predicted_state_bytes(n_teacher: int, n_trained: int,
                          n_frozen_student: int = 0,
                          teacher_dtype: str = 'float32',
                          optimizer_slots: int = 2, ema: bool = True,
                          ranks: int = 1,
                          shard_teacher: bool = False) -> Dict[str, float]:
    """The training state of one process, by part (see the module
    docstring for the equations).

    Args:
        n_teacher: teacher weights N_T.
        n_trained: trained student weights N_S (float32).
        n_frozen_student: frozen student weights held apart from the
            teacher's tensors N_F (0 for a full or a weight-sharing LoRA
            student).
        teacher_dtype: storage of the teacher (and of N_F).
        optimizer_slots: float32 slots per trained weight (Adam: 2).
        ema: whether an EMA of the trained weights is kept.
        ranks: processes the trained state is sharded over (1: none).
        shard_teacher: whether the frozen teacher is sharded too.

    Returns:
        Bytes of ``teacher``, ``student``, ``grads``, ``moments``, ``ema``
        and their ``total``.
    """
    b_t = DTYPE_BYTES[teacher_dtype]
    r = float(ranks)
    out = dict(teacher=b_t * n_teacher / (r if shard_teacher else 1.0),
               student=4 * n_trained / r + b_t * n_frozen_student,
               grads=4 * n_trained / r,
               moments=4 * optimizer_slots * n_trained / r,
               ema=4 * n_trained / r if ema else 0.0)
    out['total'] = sum(out.values())
    return out


def distinct_bytes(tensors: Iterable[torch.Tensor],
                   seen: Optional[set] = None) -> int:
    """Bytes of the distinct storages behind ``tensors`` (a storage shared
    by several tensors, or already in ``seen``, counted once; of a sharded
    ``DTensor`` the local shard's)."""
    seen = set() if seen is None else seen
    total = 0
    for t in tensors:
        if hasattr(t, 'to_local'):  # a DTensor: this rank's shard
            t = t.to_local()
        s = t.untyped_storage()
        key = (s.data_ptr(), s.nbytes())
        if key not in seen:
            seen.add(key)
            total += s.nbytes()
    return total


def measured_state_bytes(model: nn.Module,
                         optimizer: Optional[torch.optim.Optimizer] = None
                         ) -> Dict[str, int]:
    """The bytes a distiller's training state occupies, counted from its
    tensors (each storage once, in this order: teacher, student weights,
    EMA, gradients, optimizer state).

    Args:
        model: a distiller (``teacher``, ``net``, optional ``net_ema``).
        optimizer: its optimizer (after a step, so the moments exist).

    Returns:
        Bytes of ``teacher``, ``student``, ``ema``, ``grads``, ``moments``
        and their ``total`` (what is shared is counted in the first part
        holding it: a LoRA student's base weights are the teacher's).
    """
    seen: set = set()
    teacher = getattr(model, 'teacher', None)
    ema = getattr(model, 'net_ema', None)
    out = dict(
        teacher=distinct_bytes(teacher.parameters(), seen)
        if teacher is not None else 0,
        student=distinct_bytes(model.net.parameters(), seen),
        ema=distinct_bytes(ema.parameters(), seen) if ema is not None
        else 0,
        grads=distinct_bytes((p.grad for p in model.parameters()
                              if p.grad is not None), seen))
    moments = []
    if optimizer is not None:
        for state in optimizer.state.values():
            moments += [v for k, v in state.items()
                        if torch.is_tensor(v) and k != 'step']
    out['moments'] = distinct_bytes(moments, seen)
    out['total'] = sum(out.values())
    return out
