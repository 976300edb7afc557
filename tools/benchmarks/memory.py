"""Section ``memory``: the peak memory of training.

Teacher training (``CFGDiffusion``), stage 1 (``GuidanceDistiller``),
stage 2 (``ProgressiveDistiller``) and the plain stage-1 peer each run in
a fresh process (``tools/benchmark.py --child memory --what <model>``):
build the model, one warm-up step at batch 2 (lazy initialisation,
optimizer state), reset the peak-RSS mark (/proc/self/clear_refs), then
``--mem-iters`` steps at batch B = ``--train-batch``.

Peak = the peak resident set size (VmHWM); increase = peak minus the
resident size before the first timed step (activations and autograd graph
at batch B); reported against the teacher training's increase.
"""
import argparse
import json
from typing import Any, Dict, Tuple

import torch

from .common import (Log, current_rss_mib, markdown_table, peak_rss_mib, ratio,
                     reset_peak_rss)
from .models import (build_peer, build_stage1, build_stage2, build_teacher,
                     lora_settings, make_batch, optim_wrapper_for)
from .processes import child_cmd, run_child

TITLE = 'Peak memory of training'

#: The models measured, in row order, with their row names.
NAMES = dict(teacher='teacher training (CFGDiffusion)',
             stage1='stage 1 (GuidanceDistiller)',
             stage2='stage 2 (ProgressiveDistiller)',
             peer='plain stage 1 peer')


def child(args: argparse.Namespace) -> None:
    """The child process: peak RSS of a few training steps of one model.

    Prints one JSON line: ``what``, ``base_mib``, ``peak_mib`` and
    ``peak_reset`` (whether the peak mark could be reset; if not, the
    base is the peak so far).

    Args:
        args: the parsed command line (``what``, ``threads``,
            ``train_batch``, ``mem_iters``, model options).
    """
    torch.set_num_threads(args.threads)
    data = make_batch(args.train_batch, args.device)
    warm = make_batch(2, args.device, seed=1)
    what = args.what
    if what == 'peer':
        peer = build_peer(args)

        def step(d=data):
            peer.step(d['inputs'], d['data_samples'])
    else:
        builders = dict(
            stage1=build_stage1, stage2=build_stage2, teacher=build_teacher,
            stage1_lora=lambda a: build_stage1(a, lora_settings()),
            stage2_lora=lambda a: build_stage2(a, lora_settings()))
        m = builders[what](args).train()
        ow = optim_wrapper_for(m)

        def step(d=data):
            m.train_step(d, ow)
    step(warm)  # lazy initialisations and optimizer state, at batch 2
    reset = reset_peak_rss()
    base = current_rss_mib() if reset else peak_rss_mib()
    for _ in range(args.mem_iters):
        step()
    print(json.dumps(dict(what=what, base_mib=base,
                          peak_mib=peak_rss_mib(), peak_reset=reset)))


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section (one child process per model).

    Args:
        args: the parsed command line (``train_batch``, ``threads``,
            ``mem_iters``, model options).
        log: prints progress.

    Returns:
        The markdown body and the raw results: each child's JSON by model.
    """
    res = {}
    for what in NAMES:
        res[what] = run_child(child_cmd(args, [
            '--child', 'memory', '--what', what, '--train-batch',
            str(args.train_batch), '--threads', str(args.threads),
            '--mem-iters', str(args.mem_iters)]),
            args.threads)
    t = res['teacher']['peak_mib'] - res['teacher']['base_mib']
    rows = []
    for what, r in res.items():
        inc = r['peak_mib'] - r['base_mib']
        rows.append([NAMES[what], r['peak_mib'], inc, ratio(inc, t)])
    body = markdown_table(['training', 'peak RSS MiB',
                           'increase over built model MiB',
                           'increase / teacher training'], rows)
    body += (f'\n\nEach row is a fresh process, batch {args.train_batch}, '
             f'{args.mem_iters} training steps after building the model and '
             'one warm-up step at batch 2 (lazy initialisation, optimizer '
             'state). Peak = the peak resident set size (VmHWM, reset with '
             '/proc/self/clear_refs after the build so import-time peaks do '
             'not hide it); increase = peak minus the resident size before '
             'the first step (activations and autograd graph at batch B).')
    log(body)
    return body, res
