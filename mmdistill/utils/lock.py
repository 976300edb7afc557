"""One run per work dir: an advisory lock file holding the owner's pid and
host.

``work_dir/.mmdistill.lock`` is created and ``flock``-ed by the run's main
process. A second run in the same folder is refused with a one-line error
naming the owner. A lock whose owner is gone (the process died without
cleaning up) is taken over with a message. Within one process the lock is
re-entrant (a second runner of the same process in the same folder reuses
it).
"""
import errno
import json
import os
import socket
import sys
import time

from .errors import UserError

LOCK_NAME = '.mmdistill.lock'
_held = {}  # lock path -> [fd, count]


def pid_alive(pid):
    """True if a process with this pid exists on this host."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read(path):
    try:
        with open(path) as f:
            return json.loads(f.read() or '{}')
    except (OSError, ValueError):
        return {}


def acquire_work_dir(work_dir):
    """Take the lock of ``work_dir`` (created if needed); returns its path.

    Raises:
        UserError: another live run holds it.
    """
    import fcntl
    path = os.path.join(os.path.abspath(work_dir), LOCK_NAME)
    if path in _held:
        _held[path][1] += 1
        return path
    folder = os.path.dirname(path)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f'work dir {work_dir} is a file, not a folder; '
                        'choose another --work-dir or move the file away')
    os.makedirs(folder, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES,
                               errno.EWOULDBLOCK):
                raise
            owner = _read(path)
            raise UserError(
                f'work dir {work_dir} is in use by another run (pid '
                f"{owner.get('pid', '?')} on host {owner.get('host', '?')}"
                f", since {owner.get('started', '?')}); wait for it to "
                'finish or choose another --work-dir') from None
        try:  # the holder may have removed the file while we waited
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    owner = _read(path)
    host = socket.gethostname()
    if owner.get('pid') not in (None, os.getpid()):
        # the lock was free: its recorded owner died without releasing it
        print(f"taking over the stale lock {path} of pid {owner['pid']} on "
              f"host {owner.get('host', '?')} (that run is gone)",
              file=sys.stderr)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(dict(
        pid=os.getpid(), host=host,
        started=time.strftime('%Y-%m-%d %H:%M:%S'))).encode())
    os.fsync(fd)
    _held[path] = [fd, 1]
    return path


def release_work_dir(path, force=False):
    """Give the lock back (the file is removed when the last user in this
    process releases it)."""
    entry = _held.get(path)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0 and not force:
        return
    del _held[path]
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(entry[0])


def release_all():
    for path in list(_held):
        release_work_dir(path, force=True)
