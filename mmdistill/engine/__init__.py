from . import hooks  # noqa: F401
from .runner import DistillRunner, init_cpu_dist, resume_allowlist

__all__ = ['DistillRunner', 'init_cpu_dist', 'resume_allowlist']
