"""mmdistill: distillation of classifier-free-guided diffusion models, as an
mmagic plugin (registries are children of ``mmagic.registry``).

Components register when their sub-package is imported: on the first
registry look-up (``locations``), or all at once with
:func:`register_all_modules` (what the tools call).
"""
from .setup_env import register_all_modules

__version__ = '0.1.0'

__all__ = ['__version__', 'register_all_modules']
