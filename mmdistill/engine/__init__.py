"""Runner, hooks, loops and optimizer wrappers. Every module here is
imported so its components register."""
from mmdistill.utils.autoimport import import_submodules

from .runner import DistillRunner, init_cpu_dist, resume_allowlist

import_submodules(__name__, __path__)

__all__ = ['DistillRunner', 'init_cpu_dist', 'resume_allowlist']
