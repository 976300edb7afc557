"""Shared command-line plumbing: config loading and one-line errors."""
import functools
import os
import sys

from mmdistill.utils import UserError


def add_common_args(parser):
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='override config entries, e.g. '
                        'train_cfg.max_iters=100')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback on errors')
    return parser


def load_config(path, cfg_options=()):
    """``Config.fromfile`` plus ``--cfg-options`` with one-line errors."""
    from mmengine.config import Config, DictAction
    if not os.path.isfile(path):
        raise UserError(f'config not found: {path} (see configs/ for the '
                        'shipped ones)')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # noqa: BLE001
        raise UserError(f'cannot parse config {path}: '
                        f'{type(e).__name__}: {str(e).splitlines()[0]}') from e
    if cfg_options:
        opts = {}
        for item in cfg_options:
            if '=' not in item:
                raise UserError(f'bad --cfg-options entry {item!r} (use '
                                'KEY=VALUE)')
            k, v = item.split('=', 1)
            opts[k] = DictAction._parse_iterable(v)
        cfg.merge_from_dict(opts)
    return cfg


def _one_line(e):
    text = str(e).strip().strip('"').strip("'")
    return text.splitlines()[0] if text else type(e).__name__


def explain(e):
    """A one-line message for a known failure, or None."""
    if isinstance(e, UserError):
        return _one_line(e)
    msg = str(e)
    if isinstance(e, KeyError) and 'registry' in msg:
        name = msg.strip('"\'').split(' is not in the ')[0]
        return (f'unknown type {name!r} in the config: it is not registered '
                '(check the spelling, or import the module that registers '
                'it via custom_imports)')
    if isinstance(e, FileNotFoundError):
        return f'file not found: {e.filename or _one_line(e)}'
    if isinstance(e, PermissionError):
        return (f'permission denied: {e.filename or _one_line(e)} (choose a '
                'writable --work-dir / output folder)')
    if isinstance(e, (ValueError, TypeError)):
        return f'invalid configuration: {_one_line(e)}'
    return None


def cli_main(fn):
    """Run ``fn()``; bad input ends with ``error: <one line>`` and exit 2
    (the traceback only with ``--debug``)."""

    @functools.wraps(fn)
    def wrapper():
        debug = '--debug' in sys.argv
        try:
            return fn()
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)
        except Exception as e:  # noqa: BLE001
            line = explain(e) if not debug else None
            if line is None:
                raise
            print(f'error: {line}', file=sys.stderr)
            sys.exit(2)

    return wrapper
