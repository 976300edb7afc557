"""mmengine's Runner with the two repairs a current torch needs.

1. Resume: torch >= 2.6 loads with ``weights_only=True`` by default and an
   mmengine checkpoint holds a few non-tensor objects (``HistoryBuffer``,
   NumPy arrays and scalars, ``ConfigDict``). Resume files the run wrote itself are read with
   exactly these classes allow-listed; everything a user hands in
   (``load_from``, teacher weights) stays ``weights_only=True``.
2. Distributed on CPU: mmengine's pytorch launcher calls
   ``torch.cuda.set_device`` unconditionally. Without CUDA the process group
   is initialised here with gloo before mmengine looks.
"""
import datetime
import os

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner

from mmdistill.registry import MODEL_WRAPPERS


def resume_allowlist():
    """Classes an mmengine resume checkpoint may hold beyond tensors."""
    from mmengine.config import ConfigDict
    allowed = [
        HistoryBuffer, np.ndarray, np.dtype, np._core.multiarray._reconstruct,
        np._core.multiarray.scalar, ConfigDict, getattr
    ]
    allowed += [type(np.dtype(t)) for t in
                 ('float64', 'float32', 'int64', 'int32', 'bool', 'uint8')]
    return allowed


def init_cpu_dist(timeout_s=None):
    """Initialise torch.distributed with gloo from torchrun's environment."""
    timeout = datetime.timedelta(seconds=float(
        timeout_s or os.environ.get('MMDISTILL_DIST_TIMEOUT', 1800)))
    torch_dist.init_process_group(
        backend='gloo', rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']), timeout=timeout)


class DistillRunner(Runner):
    """``mmengine.runner.Runner`` that resumes on current torch and runs
    multi-process on CPU (gloo) as well as on GPUs (NCCL)."""

    def setup_env(self, env_cfg):
        if self.distributed and not torch_dist.is_initialized() and \
                not torch.cuda.is_available():
            timeout = (env_cfg or {}).get('dist_cfg', {}).get('timeout')
            init_cpu_dist(timeout)
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and model_wrapper_cfg is None:
            model_wrapper_cfg = dict(type='DistillDataParallel')
        if model_wrapper_cfg is not None and self.distributed:
            model_wrapper_cfg = dict(model_wrapper_cfg)
            t = model_wrapper_cfg.get('type', 'DistillDataParallel')
            if isinstance(t, str) and MODEL_WRAPPERS.get(t) is None:
                raise KeyError(f'{t} is not in the model_wrapper registry')
        return super().wrap_model(model_wrapper_cfg, model)

    def resume(self, filename, resume_optimizer=True,
               resume_param_scheduler=True, map_location='default'):
        with torch.serialization.safe_globals(resume_allowlist()):
            return super().resume(filename, resume_optimizer,
                                  resume_param_scheduler, map_location)
