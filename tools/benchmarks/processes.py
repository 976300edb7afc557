"""Running a benchmark measurement in a fresh process.

The memory and evaluation sections start ``tools/benchmark.py --child
<kind>`` (optionally under torchrun) with the model options of the parent
and the thread count set through ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``;
the child prints one JSON line, which is the result. A fresh process keeps
one model's peak memory (or one setting's start-up) apart from the others.
"""
import argparse
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from .common import ROOT

#: The entry point the children run.
ENTRY = osp.join(ROOT, 'tools', 'benchmark.py')


def child_cmd(args: argparse.Namespace, extra: List[str]) -> List[str]:
    """The command line of a child process.

    Args:
        args: the parent's parsed command line (device, ``--quick`` and
            the checkpoints are passed on).
        extra: the child's own flags (``--child ...``).

    Returns:
        ``[python, tools/benchmark.py, ...]``.
    """
    cmd = [sys.executable, ENTRY, '--device', args.device]
    if args.quick:
        cmd.append('--quick')
    for flag, v in (('--teacher-ckpt', args.teacher_ckpt),
                    ('--student-ckpt', args.student_ckpt)):
        if v:
            cmd += [flag, v]
    return cmd + extra


def run_child(cmd: List[str], threads: int,
              env_extra: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Runs a child in the repository root and reads its result.

    Args:
        cmd: the command line (:func:`child_cmd`).
        threads: OpenMP / MKL threads of the child.
        env_extra: more environment variables.

    Returns:
        The last JSON line the child printed, with ``process_wall_s`` (the
        whole process, start-up included) added.

    Raises:
        RuntimeError: when the child fails (with the end of its stderr).
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env.update(env_extra or {})
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f'benchmark child failed ({" ".join(cmd)}):\n'
                           f'{p.stderr[-2000:]}')
    line = [ln for ln in p.stdout.splitlines() if ln.startswith('{')][-1]
    out = json.loads(line)
    out['process_wall_s'] = wall
    return out


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for torchrun's master).

    Returns:
        The port number.
    """
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
