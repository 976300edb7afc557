"""Section ``mgd3``: the time of an MGD3 synthesis run.

MGD3 synthesis of digits IPC 10 (``configs/mgd3/mgd3_digits_ipc10.py``:
k-means mode discovery + 100 mode- and stop-guided images) with the
shipped teacher (checkpoints/digits_teacher.pth), model build included,
into a fresh temporary folder each run; best of 2 runs (1 run of a 4-step
synthesis with ``--quick``). Target: under 60 s on the 2-core CPU.
"""
import argparse
import os.path as osp
import tempfile
import time
from typing import Any, Dict, Tuple

from .common import ROOT, Log, markdown_table, verdict

TITLE = 'MGD3 synthesis, digits IPC 10'

#: The synthesis config timed.
CONFIG = osp.join(ROOT, 'configs/mgd3/mgd3_digits_ipc10.py')


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section.

    Args:
        args: the parsed command line (``quick``).
        log: prints the best time.

    Returns:
        The markdown body and the raw results (``seconds`` of every run,
        ``images`` written per run).
    """
    from mmdistill.apis import load_config
    from mmdistill.synthesis.pipeline import Synthesizer
    cfg = load_config(CONFIG)
    if args.quick:
        cfg.synthesis.steps, cfg.synthesis.t_stop = 4, 2
    times = []
    for _ in range(1 if args.quick else 2):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            man = Synthesizer(cfg, out, progress=False,
                              log=lambda *a: None).run()
            times.append(time.perf_counter() - t0)
    best = min(times)
    log(f'IPC 10: {man["total"]} images, best of {len(times)}: {best:.2f} s')
    body = markdown_table(['run', 'images', 'seconds'], [
        [i + 1, man['total'], f'{t:.2f}'] for i, t in enumerate(times)])
    body += ('\n\nMode discovery (k-means) and synthesis with the shipped '
             'teacher and `configs/mgd3/mgd3_digits_ipc10.py` '
             f'({cfg.synthesis.steps} steps), model build included, in a '
             'fresh folder each run. Target: under 60 s: '
             f'{verdict(best < 60)}.')
    return body, dict(seconds=times, images=man['total'])
