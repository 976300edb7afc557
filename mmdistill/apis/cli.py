"""Shared command-line plumbing: config loading and one-line errors."""
import errno
import functools
import os
import sys

from mmdistill.utils import UserError
from mmdistill.utils.config import load_config  # noqa: F401  (re-export)


def add_common_args(parser):
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='override config entries, e.g. '
                        'train_cfg.max_iters=100')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback on errors')
    return parser


def add_launcher_args(parser):
    """``--launcher`` and ``--local-rank`` as mmagic's tools take them."""
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def set_local_rank(args):
    """``LOCAL_RANK`` from ``--local-rank`` unless the launcher set it; with
    ``--launcher slurm`` the torch variables from Slurm's
    (:func:`slurm_env`)."""
    if getattr(args, 'launcher', None) == 'slurm' and \
            'SLURM_PROCID' in os.environ:
        for key, value in slurm_env().items():
            os.environ.setdefault(key, value)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def slurm_env(environ=None):
    """torch.distributed's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR`` and ``MASTER_PORT`` for a task started by ``srun``.

    They are set before the runner is built, so every task knows its rank
    from the start (one work-dir lock, on rank 0) and the CPU (gloo) path
    works as with torchrun. ``MASTER_ADDR`` is kept when set, else the first
    host of ``SLURM_NODELIST`` (``scontrol show hostnames``), else
    127.0.0.1; ``MASTER_PORT`` defaults to 29500.

    Args:
        environ (dict, optional): the environment (default ``os.environ``).

    Returns:
        dict of str -> str.
    """
    import shutil
    import subprocess
    environ = os.environ if environ is None else environ
    out = dict(RANK=environ['SLURM_PROCID'],
               WORLD_SIZE=environ.get('SLURM_NTASKS', '1'),
               LOCAL_RANK=environ.get('SLURM_LOCALID', '0'),
               MASTER_PORT=environ.get('MASTER_PORT', '29500'))
    addr = environ.get('MASTER_ADDR')
    nodes = environ.get('SLURM_NODELIST') or environ.get('SLURM_JOB_NODELIST')
    if addr is None and nodes and shutil.which('scontrol'):
        r = subprocess.run(['scontrol', 'show', 'hostnames', nodes],
                           capture_output=True, text=True)
        hosts = r.stdout.split()
        addr = hosts[0] if r.returncode == 0 and hosts else None
    out['MASTER_ADDR'] = addr or '127.0.0.1'
    return out


def check_finite_arg(value, option):
    """A numeric command-line value (guidance weight...) must be finite:
    NaN / inf propagate into every pixel and give a blank result."""
    import math
    if value is not None and not math.isfinite(value):
        raise UserError(f'{option} must be a finite number, got {value}')


def check_output_folder(path, option):
    """An output folder may not be an existing file."""
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f'{option} {path} is a file, not a folder; choose '
                        f'another {option} or move the file away')


def _one_line(e):
    text = str(e).strip()
    if isinstance(e, KeyError) and len(text) > 1 and text[0] == text[-1] \
            and text[0] in '"\'':
        text = text[1:-1]  # KeyError quotes its message
    return text.splitlines()[0] if text else type(e).__name__


def _from_worker(e):
    """The original message of an exception re-raised by a DataLoader worker
    (torch puts 'Caught X in DataLoader worker process N.' and the worker's
    traceback into the message; its last line holds the real message)."""
    text = str(e)
    if 'DataLoader worker' not in text or 'Traceback' not in text:
        return None
    last = [ln for ln in text.splitlines() if ln.strip()][-1].strip()
    return last.split(': ', 1)[1] if ': ' in last else last


_DISK_ERRNOS = {
    errno.ENOSPC: 'no space left on device',
    errno.EDQUOT: 'disk quota exceeded',
    errno.EROFS: 'read-only file system',
    errno.ENOTDIR: 'not a directory (a path component is a file)',
    errno.EACCES: 'permission denied',
    errno.EPERM: 'operation not permitted',
    errno.EISDIR: 'is a directory',
    errno.EEXIST: 'a file of that name is in the way of a folder',
    errno.EFBIG: 'file too large (a file-size limit of the system or '
                 'process)',
}


def _peer_failure(e):
    """True for the errors torch.distributed raises when a peer rank died
    or a collective timed out."""
    names = {c.__name__ for c in type(e).__mro__}
    text = str(e)
    return bool(names & {'DistBackendError', 'DistNetworkError',
                         'DistStoreError'}) or any(
        k in text for k in ('Connection closed by peer', 'Connection reset',
                            'Broken pipe', 'Timed out waiting',
                            'timed out', 'Gloo'))


def explain(e):
    """A one-line message for a known failure, or None."""
    if isinstance(e, UserError):
        return _from_worker(e) or _one_line(e)
    msg = str(e)
    if isinstance(e, KeyError) and 'registry' in msg:
        name = msg.strip('"\'').split(' is not in the ')[0]
        return (f'unknown type {name!r} in the config: it is not registered '
                '(check the spelling, or import the module that registers '
                'it via custom_imports)')
    if isinstance(e, FileNotFoundError):
        return f'file not found: {e.filename or _one_line(e)}'
    if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
        return (f'cannot write {e.filename or "the output"}: '
                f'{_DISK_ERRNOS[e.errno]} (choose a writable --work-dir / '
                'output folder with free space; existing checkpoints are '
                'kept)')
    if isinstance(e, RuntimeError) and _peer_failure(e):
        return ('a process of the distributed run failed or stopped '
                f'answering ({_one_line(e)[:160]}); see the other ranks\' '
                'logs, then resume with --resume (the timeout is '
                'MMDISTILL_DIST_TIMEOUT seconds)')
    if isinstance(e, (ValueError, TypeError)):
        return f'invalid configuration: {_one_line(e)}'
    return None


def shutdown_distributed(finished):
    """Tear the default process group down before the interpreter exits.

    A gloo group left to the interpreter's shutdown can abort the process
    ("terminate called without an active exception", exit 134) while its
    worker threads are destroyed, turning a finished run into a failed
    rank. After a finished run every rank waits for the others (a barrier),
    so none closes its connections while a peer still talks to it. After a
    failure only a gloo group is destroyed (locally, no collective); NCCL's
    is left to the exit.

    Args:
        finished (bool): whether this rank's command returned normally.
    """
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    elif dist.get_backend() != 'gloo':
        return
    dist.destroy_process_group()


def cli_main(fn):
    """Run ``fn()``; bad input ends with ``error: <one line>`` and exit 2
    (the traceback only with ``--debug``). A process group the command
    started is shut down before the exit (:func:`shutdown_distributed`)."""

    @functools.wraps(fn)
    def wrapper():
        debug = '--debug' in sys.argv
        finished = False
        try:
            result = fn()
            finished = True
            return result
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)
        except Exception as e:  # noqa: BLE001
            line = explain(e) if not debug else None
            if line is None:
                raise
            print(f'error: {line}', file=sys.stderr)
            sys.exit(2)
        finally:
            shutdown_distributed(finished)

    return wrapper
