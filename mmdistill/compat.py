"""mmengine's package look-up without ``pkg_resources``.

mmengine 0.10.x finds installed packages with ``pkg_resources``, which
recent setuptools no longer ships: ``mmdistill::`` and ``mmagic::`` config
prefixes (``_base_ = 'mmdistill::teacher/cfg_unet_digits.py'``) then fail
with ``ModuleNotFoundError``. :func:`install_mmengine_package_lookup`
(called by ``import mmdistill``) registers the ``mmdistill`` prefix and,
only where ``pkg_resources`` is missing, gives mmengine equivalent look-ups
built on :mod:`importlib.metadata`. mmengine then reads configs from the
package's ``.mim/configs`` folder, as for any OpenMMLab package.
"""
import importlib.util
import os.path as osp
import sys
from importlib import metadata

PACKAGE = 'mmdistill'


def is_installed(package: str) -> bool:
    """Whether a distribution or an importable top-level module of that name
    exists (mmengine's ``is_installed`` without ``pkg_resources``).

    Args:
        package (str): a distribution name such as ``'mmagic'``.

    Returns:
        bool: True when installed or importable.
    """
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def _module_of(package: str) -> str:
    """The top-level module of a distribution (``top_level.txt``, else the
    distribution's name with ``-`` as ``_``)."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return package
    top = (dist.read_text('top_level.txt') or '').split()
    return top[0] if top else package.replace('-', '_')


def get_installed_path(package: str) -> str:
    """The folder an installed package is imported from (mmengine's
    ``get_installed_path`` without ``pkg_resources``).

    The folder comes from the import system, so an editable install and a
    package on ``PYTHONPATH`` resolve to the code that ``import`` runs.

    Args:
        package (str): a distribution name such as ``'mmdistill'``.

    Returns:
        str: the package folder.

    Raises:
        RuntimeError: for a namespace package (no single folder).
        metadata.PackageNotFoundError: when nothing of that name exists.
    """
    spec = importlib.util.find_spec(_module_of(package))
    if spec is None:
        spec = importlib.util.find_spec(package)
    if spec is None:
        raise metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package, which is '
                           'invalid for `get_installed_path`')
    return osp.dirname(spec.origin)


def _has_pkg_resources() -> bool:
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        return False
    return True


def install_mmengine_package_lookup() -> bool:
    """Make mmengine's ``package::path`` configs work for mmdistill.

    Registers ``mmdistill`` in mmengine's config-prefix table (so
    ``_base_ = 'mmdistill::teacher/cfg_unet_digits.py'`` is accepted) and,
    where ``pkg_resources`` is gone, replaces mmengine's ``is_installed`` and
    ``get_installed_path`` in the modules that call them with the
    :mod:`importlib.metadata` ones of this module. Idempotent.

    Returns:
        bool: True when the look-ups were replaced (no ``pkg_resources``).
    """
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
    if _has_pkg_resources():
        return False
    import mmengine.config.config as config_module
    import mmengine.utils as mm_utils
    import mmengine.utils.package_utils as package_utils
    targets = [config_module, mm_utils, package_utils]
    # mmengine.hub imports the whole runner: patched only once it is loaded
    # (call this again after importing it)
    if sys.modules.get('mmengine.hub.hub') is not None:
        targets.append(sys.modules['mmengine.hub.hub'])
    for module in targets:
        if hasattr(module, 'is_installed'):
            module.is_installed = is_installed
        if hasattr(module, 'get_installed_path'):
            module.get_installed_path = get_installed_path
    return True
