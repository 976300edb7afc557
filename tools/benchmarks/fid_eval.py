"""Section ``eval``: FID evaluation on 1 vs 2 processes.

FID-n (n = ``--eval-n``) of 4-step student samples (w = 2, digits
classifier features, real = the 1437 training digits), each setting in a
fresh process (``tools/benchmark.py --child eval``): 1 process with 1
thread, 1 process with 2 threads, and 2 processes under torchrun (gloo,
1 thread each, every rank evaluating its share).

The evaluation time is taken between barriers around
``evaluate_generator`` and excludes start-up (imports, model build,
process-group set-up), which the whole-process time includes. Speed-up =
T(1 process, 1 thread) / T(2 processes); target: 2 processes >= 1.6x the
best single-process setting. The three FIDs agree.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Any, Dict, Tuple

import torch

from .common import ROOT, Log, markdown_table, ratio, verdict
from .models import build_student_sampler
from .processes import child_cmd, free_port, run_child

TITLE = 'FID evaluation, 1 vs 2 processes'

#: Features of the FID: the digits classifier.
CLASSIFIER = osp.join(ROOT, 'checkpoints', 'digits_classifier.pth')


def child(args: argparse.Namespace) -> None:
    """The child process: FID of 4-step student samples.

    Under torchrun each rank does its share (gloo); rank 0 prints one JSON
    line: ``seconds``, ``fid``, ``world``, ``threads``.

    Args:
        args: the parsed command line (``eval_n``, ``threads``, model
            options).
    """
    world = int(os.environ.get('WORLD_SIZE', 1))
    torch.set_num_threads(args.threads)
    if world > 1:
        from mmdistill.engine import init_cpu_dist
        init_cpu_dist(timeout_s=600)
    import torch.distributed as dist

    from mmdistill.datasets import load_digits_split
    from mmdistill.evaluation import evaluate_generator
    from mmdistill.evaluation.extractors import build_extractor
    student = build_student_sampler(args)
    ext = build_extractor(dict(type='classifier', checkpoint=CLASSIFIER))
    real, _ = load_digits_split('train')
    real = torch.as_tensor(real)
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    res = evaluate_generator(student, ext, real, n=args.eval_n,
                             metrics=('FID', ),
                             sample_kwargs=dict(steps=4, guidance=2.0),
                             batch_size=500, progress=False)
    if world > 1:
        dist.barrier()
    dt = time.perf_counter() - t0
    if int(os.environ.get('RANK', 0)) == 0:
        print(json.dumps(dict(seconds=dt, fid=list(res.values())[0],
                              world=world, threads=args.threads)))
    if world > 1:
        dist.destroy_process_group()


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section (three child runs, the last under torchrun).

    Args:
        args: the parsed command line (``eval_n``, model options).
        log: prints progress.

    Returns:
        The markdown body and the raw results (``n``, the three times,
        ``speedup_vs_1thr``, ``speedup_vs_best`` and the three FIDs).
    """
    base = ['--child', 'eval', '--eval-n', str(args.eval_n)]
    one1 = run_child(child_cmd(args, base + ['--threads', '1']), 1)
    one2 = run_child(child_cmd(args, base + ['--threads', '2']), 2)
    tr = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
          '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
          '--master_port', str(free_port())]
    two = run_child(tr + child_cmd(args, base + ['--threads', '1'])[1:], 1)
    best1 = min(one1['seconds'], one2['seconds'])
    res = dict(n=args.eval_n, one_proc_1thr_s=one1['seconds'],
               one_proc_2thr_s=one2['seconds'], two_proc_s=two['seconds'],
               speedup_vs_1thr=ratio(one1['seconds'], two['seconds']),
               speedup_vs_best=ratio(best1, two['seconds']),
               fid=[one1['fid'], one2['fid'], two['fid']])
    rows = [['1 process, 1 thread', one1['seconds'], 1.0,
             one1['process_wall_s'], one1['fid']],
            ['1 process, 2 threads', one2['seconds'],
             ratio(one1['seconds'], one2['seconds']),
             one2['process_wall_s'], one2['fid']],
            ['2 processes (gloo), 1 thread each', two['seconds'],
             res['speedup_vs_1thr'], two['process_wall_s'], two['fid']]]
    body = markdown_table(['setting', 'FID evaluation s', 'speed-up vs 1x1',
                           'whole process s', 'FID'], rows)
    body += (f'\n\nFID-{args.eval_n} of 4-step student samples (w = 2, '
             'classifier features, real = the 1437 training digits). '
             '2 processes vs the best single-process setting: '
             f'{res["speedup_vs_best"]:.2f}x (target >= 1.6x: '
             f'{verdict(res["speedup_vs_best"] >= 1.6)}). '
             'The evaluation time excludes start-up (imports, model '
             'build, process-group set-up), which the whole-process column '
             'includes.')
    log(body)
    return body, res
