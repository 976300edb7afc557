"""mmdistill: distillation of classifier-free-guided diffusion models, as an
mmagic plugin (registries are children of ``mmagic.registry`` where mmagic is
installed, of mmengine's otherwise).

Components register when their sub-package is imported: on the first
registry look-up (``locations``), or all at once with
:func:`register_all_modules` (what the tools call). Importing the package
also lets mmengine resolve ``mmdistill::`` (and ``mmagic::``) config paths
on a setuptools without ``pkg_resources``.
"""
from .compat import install_mmengine_package_lookup
from .setup_env import register_all_modules
from .version import __version__, version_info

install_mmengine_package_lookup()

__all__ = ['__version__', 'version_info', 'register_all_modules']
