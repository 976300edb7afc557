"""Run a tool of the installed package: ``python -m mmdistill TOOL ARGS``.

What ``mim train mmdistill CONFIG`` does, without openmim: the tool is
``tools/TOOL.py`` of the package (``mmdistill/.mim/tools``, or the
checkout's ``tools/``), and a config that is not a file is looked up by
name among the package's configs::

    python -m mmdistill train guided_distill_digits.py --work-dir work_dirs/gd
    python -m mmdistill train guided_distill/guided_distill_digits.py
    python -m mmdistill test cfg_unet_digits.py checkpoints/digits_teacher.pth
"""
import os
import os.path as osp
import runpy
import sys
from typing import List, Optional

from mmdistill.utils.package import resolve_package_path

USAGE = ('usage: python -m mmdistill TOOL [CONFIG] [ARGS...]   (TOOL: train, '
         'test, sample, synthesize, ...: a file of the package\'s tools/)')


def find_config(name: str) -> Optional[str]:
    """A config of the package by path or by name.

    Args:
        name (str): an existing file, a path under ``configs/``
            (``'guided_distill/guided_distill_digits.py'``), or a file name
            (``'guided_distill_digits.py'``, ``.py`` optional) found once in
            the package's configs.

    Returns:
        str | None: the config file (absolute path), or None when there is
        none or the name is ambiguous.
    """
    if osp.isfile(name):
        return osp.abspath(name)
    name = name.split('::', 1)[-1]
    if not name.endswith('.py'):
        name += '.py'
    for rel in (name, osp.join('configs', name)):
        found = resolve_package_path(rel)
        if osp.isfile(found):
            return osp.abspath(found)
    root = resolve_package_path('configs')
    if not osp.isdir(root):
        return None
    hits = [osp.join(d, f) for d, _, files in os.walk(root, followlinks=True)
            for f in files if f == osp.basename(name)
            and '_base_' not in osp.relpath(d, root).split(os.sep)]
    return osp.abspath(hits[0]) if len(hits) == 1 else None


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``tools/<argv[0]>.py`` with the remaining arguments.

    Args:
        argv (list[str] | None): the arguments after ``-m mmdistill``
            (default: ``sys.argv[1:]``).

    Returns:
        int: 0 when the tool ran; 2 for a usage error (the tool's own exit
        status passes through as ``SystemExit``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(USAGE)
        return 0 if argv else 2
    tool = resolve_package_path(osp.join('tools', argv[0] + '.py'))
    if not osp.isfile(tool):
        print(f'error: no tool {argv[0]!r} in the package (looked for '
              f'{tool})', file=sys.stderr)
        return 2
    args = argv[1:]
    if args and not args[0].startswith('-') and not osp.isfile(args[0]):
        config = find_config(args[0])
        if config is not None:
            args[0] = config
    sys.argv = [tool] + args
    sys.path.insert(0, osp.dirname(osp.abspath(tool)))  # as for a script
    runpy.run_path(tool, run_name='__main__')
    return 0


if __name__ == '__main__':
    sys.exit(main())
