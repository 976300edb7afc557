"""Section ``sampling``: the sampling speed-up of the distilled student over
the CFG teacher.

Images/s of the w-conditioned student at ``--student-steps`` (1/2/4/8) vs
the CFG teacher with DDIM at ``--teacher-steps`` (256 and 64), same batch
of noise and labels, guidance w = 2, timed in interleaved rounds
(:func:`common.interleaved`) after one warm-up call each.

NFE per image: 2N for the N-step CFG teacher (cond + uncond), M for the
M-step student; NFE ratio = 2N / M; wall-clock speed-up =
images/s(student) / images/s(teacher). Target: the 4-step student >=
0.9 x NFE ratio (115.2x) over the 256-step teacher.
"""
import argparse
from typing import Any, Dict, Tuple

import torch

from .common import (Log, autocast, interleaved, markdown_table, nfe,
                     nfe_ratio, ratio, speedup_target, timed, verdict)
from .models import build_student_sampler, build_teacher

TITLE = 'Sampling speed-up (student vs CFG teacher)'


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section.

    Args:
        args: the parsed command line (``sample_batch``,
            ``teacher_steps``, ``student_steps``, ``sample_repeats``,
            ``min_round_s``, model options).
        log: prints progress.

    Returns:
        The markdown body and the raw results (``batch``,
        ``images_per_s`` by ``teacher<N>`` / ``student<M>``, ``speedup``
        by ``<M>vs<N>`` with ``speedup`` and ``nfe_ratio``).
    """
    dev = args.device
    teacher = build_teacher(args).eval()
    student = build_student_sampler(args)
    b = args.sample_batch
    g = torch.Generator().manual_seed(0)
    noise = torch.randn((b, 1, 8, 8), generator=g).to(dev)
    labels = (torch.arange(b) % 10).to(dev)
    t_steps = args.teacher_steps
    s_steps = args.student_steps

    def job(model, steps):
        return timed(lambda: model.sample(labels, noise=noise, steps=steps,
                                          guidance=2.0,
                                          sample_model='orig'), dev)

    fns = {('teacher', n): job(teacher, n) for n in t_steps}
    fns.update({('student', n): job(student, n) for n in s_steps})
    with autocast(args):
        med, numbers = interleaved(fns, args.sample_repeats, 1,
                                   min_round_s=args.min_round_s)
    ips = {k: b / v for k, v in med.items()}
    rows, result = [], dict(batch=b, images_per_s={}, speedup={})
    for (kind, n), v in sorted(ips.items(), key=lambda kv: (
            kv[0][0] != 'teacher', -kv[0][1])):
        rows.append([f'{kind} {"CFG-DDIM" if kind == "teacher" else "DDIM"}'
                     f' {n} steps', nfe(n, kind == 'teacher'), v,
                     med[(kind, n)] * 1000])
        result['images_per_s'][f'{kind}{n}'] = v
    body = markdown_table(['sampler', 'NFE / image', 'images/s',
                           f'ms / batch of {b}'], rows)
    srows = []
    for tn in t_steps:
        for sn in s_steps:
            sp = ratio(ips[('student', sn)], ips[('teacher', tn)])
            nr = nfe_ratio(tn, sn)
            result['speedup'][f'{sn}vs{tn}'] = dict(speedup=sp, nfe_ratio=nr)
            srows.append([f'{sn}-step student vs {tn}-step CFG teacher', nr,
                          sp, ratio(sp, nr)])
    body += '\n\n' + markdown_table(
        ['comparison', 'NFE ratio', 'wall-clock speed-up',
         'speed-up / NFE ratio'], srows)
    if 4 in s_steps and 256 in t_steps:
        sp = result['speedup']['4vs256']['speedup']
        tgt = speedup_target(256, 4)
        body += (f'\n\nTarget: 4-step student >= 0.9 x NFE ratio = '
                 f'{tgt:.1f}x over the 256-step CFG teacher: measured '
                 f'{sp:.1f}x ({verdict(sp >= tgt)}).')
    body += (f'\n\nSame batch ({b}), same device, guidance w = 2, median of '
             f'{args.sample_repeats} interleaved rounds after one warm-up '
             'call each.')
    log(body)
    return body, result
