"""Where the package's shipped files are.

An installed mmdistill carries its configs, tools, model index and the small
shipped checkpoints in ``mmdistill/.mim/`` (the OpenMMLab layout that
``mim`` and mmengine's ``package::path`` configs read); a source checkout
has them at the repository root. :func:`resolve_package_path` finds a
relative path such as ``checkpoints/digits_teacher.pth`` in either place
when it does not exist from the working folder."""
import os
import os.path as osp
from typing import Optional, Union


def package_dir() -> str:
    """The folder of the imported ``mmdistill`` package."""
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def mim_dir() -> str:
    """``mmdistill/.mim``: configs, tools, model index and checkpoints of an
    installed package (links to the checkout in an editable install)."""
    return osp.join(package_dir(), '.mim')


def checkout_dir() -> Optional[str]:
    """The repository root when the package is imported from a source
    checkout (``setup.py`` and ``configs/`` beside it), else None."""
    root = osp.dirname(package_dir())
    if osp.isfile(osp.join(root, 'setup.py')) and osp.isdir(
            osp.join(root, 'configs')):
        return root
    return None


def resolve_package_path(path: Union[str, os.PathLike]) -> str:
    """Find a shipped file or folder from any working folder.

    Args:
        path (str | os.PathLike): a path as written in a config, e.g.
            ``'checkpoints/digits_teacher.pth'``.

    Returns:
        str: ``path`` itself when it exists or is absolute; else the same
        relative path under the source checkout, then under the installed
        package's ``.mim`` folder, whichever exists first; else ``path``
        unchanged (so an error names what the user wrote).
    """
    path = os.fspath(path)
    if osp.exists(path) or osp.isabs(path):
        return path
    for root in (checkout_dir(), mim_dir()):
        if root is not None and osp.exists(osp.join(root, path)):
            return osp.join(root, path)
    return path
