"""One training stage of the digits experiments (demo and latent pipeline).

A stage is ``tools/train.py`` on a shipped config with overrides, run in a
child process (its log in ``<parent of work_dir>/<name>.log``), skipped when
its last checkpoint already exists so an interrupted pipeline resumes at the
first unfinished stage.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, Optional

from mmdistill.utils import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write_stage_config(config: str, overrides: Dict, path: str) -> str:
    """``config`` with ``overrides`` (dotted keys, list indices allowed)
    merged in, written as a self-contained config file at ``path``."""
    from mmdistill.utils.config import load_config
    cfg = load_config(osp.join(ROOT, config))
    cfg.merge_from_dict(dict(overrides))
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path


def run_stage(name: str, config: str, work_dir: str, last_ckpt: str,
              overrides: Dict, prefix: str = 'demo',
              timings: Optional[Dict] = None) -> float:
    """Train ``config`` + ``overrides`` into ``work_dir`` unless
    ``last_ckpt`` exists; returns the seconds spent (0 when reused) and
    records them in ``timings[name]``.

    Raises:
        UserError: the stage failed or did not write ``last_ckpt``.
    """
    if osp.isfile(last_ckpt):
        print(f'[{prefix}] {name}: reusing {last_ckpt}', flush=True)
        return 0.0
    parent = osp.dirname(work_dir) or '.'
    cfg_path = write_stage_config(
        config, overrides, osp.join(parent, 'configs', name,
                                    osp.basename(config)))
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), cfg_path,
           '--work-dir', work_dir]
    log_path = osp.join(parent, f'{name}.log')
    print(f'[{prefix}] {name}: {config} -> {work_dir} (log: {log_path})',
          flush=True)
    t0 = time.time()
    with open(log_path, 'w') as log:
        r = subprocess.run(cmd, cwd=ROOT, stdout=log,
                           stderr=subprocess.STDOUT)
    if r.returncode != 0 or not osp.isfile(last_ckpt):
        raise UserError(f'{name} failed (exit {r.returncode}, no '
                        f'{osp.basename(last_ckpt)}); see {log_path}')
    dt = time.time() - t0
    if timings is not None:
        timings[name] = dt
    print(f'[{prefix}] {name}: done in {dt / 60:.1f} min', flush=True)
    return dt
