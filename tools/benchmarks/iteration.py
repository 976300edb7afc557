"""Section ``train``: the cost of a distillation iteration vs the ideal,
and vs the plain peer.

Measured: ``GuidanceDistiller.train_step`` (stage 1),
``ProgressiveDistiller.train_step`` (stage 2) and
``CFGDiffusion.train_step`` (teacher training), each with the configs'
OptimWrapper (Adam, grad-norm clip 1), and the plain peer
(:class:`models.PlainStage1`) at the same batch B = ``--train-batch``.
The ideal's parts are timed on the same networks in the same interleaved
rounds (:func:`common.interleaved`):

- T_fb = student forward + backward + optimizer step on a precomputed
  target,
- T_f(n) = frozen teacher forward under ``no_grad`` at batch n.

Ideal stage 1 = T_fb + T_f(2B) (cond and uncond in one pass); ideal
stage 2 = T_fb + 2 T_f(B) with the w-conditioned teacher (two DDIM
steps). Reported: measured / ideal (target <= 1.15) and stage 1 / peer
(target <= 1).
"""
import argparse
from typing import Any, Dict, Tuple

import torch

from .common import (Log, autocast, ideal_stage1, ideal_stage2, interleaved,
                     markdown_table, ratio, timed)
from .models import (DDPM_FOLDER, build_peer, build_stage1, build_stage2,
                     build_teacher, is_ddpm, make_batch, optim_wrapper_for)

TITLE = 'Distillation iteration vs the ideal, and the plain peer'


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section.

    Args:
        args: the parsed command line (``train_batch``, ``repeats``,
            ``min_round_s``, model options).
        log: prints progress.

    Returns:
        The markdown body and the raw results (``batch``, ``times_ms`` of
        every timed function, ``stage1_vs_ideal``, ``stage2_vs_ideal``,
        ``stage1_vs_peer``, ``ideal1_ms``, ``ideal2_ms``).
    """
    dev, b = args.device, args.train_batch
    data = make_batch(b, dev)
    s1, s2 = build_stage1(args).train(), build_stage2(args).train()
    teacher = build_teacher(args).train()
    ow1, ow2, owt = (optim_wrapper_for(m) for m in (s1, s2, teacher))
    ddpm = is_ddpm(args)
    # the plain peer is written for the cosine / v CompactUNet family
    peer = None if ddpm else build_peer(args, s1)
    x, y = data['inputs'], data['data_samples']

    # the ideal's parts, on the stage-1 student / teacher networks
    z = torch.randn_like(x)
    t = torch.rand(b, device=dev).clamp_min(1e-4)
    w = torch.rand(b, device=dev) * 4
    target = torch.randn_like(x)
    z2, t2 = torch.cat([z, z]), torch.cat([t, t])
    y2 = torch.cat([y, torch.full_like(y, 10)])
    fb_net = s1.net
    ow_fb = optim_wrapper_for(fb_net)

    def student_fb():
        out = fb_net(z, t, y, w)
        ow_fb.update_params((out - target).pow(2).mean())

    def teacher_f(n2):
        net = s1.teacher.net
        zz, tt, yy = (z2, t2, y2) if n2 else (z, t, y)

        def forward():
            with torch.no_grad():
                net(zz, tt, yy)
        return forward

    def stage2_teacher_f():
        with torch.no_grad():
            s2.teacher.net(z, t, y, w)

    fns = dict(
        t_fb=timed(student_fb, dev),
        t_f_b=timed(teacher_f(False), dev),
        t_f_2b=timed(teacher_f(True), dev),
        t_f_b_w=timed(stage2_teacher_f, dev),
        stage1=timed(lambda: s1.train_step(data, ow1), dev),
        stage2=timed(lambda: s2.train_step(data, ow2), dev),
        teacher_train=timed(lambda: teacher.train_step(data, owt), dev),
    )
    if peer is not None:
        fns['peer'] = timed(lambda: peer.step(x, y), dev)
    with autocast(args):
        med, _ = interleaved(fns, args.repeats, 2,
                             min_round_s=args.min_round_s)
    i1 = ideal_stage1(med['t_fb'], med['t_f_2b'])
    i2 = ideal_stage2(med['t_fb'], med['t_f_b_w'])
    res = dict(batch=b, times_ms={k: v * 1000 for k, v in med.items()},
               stage1_vs_ideal=ratio(med['stage1'], i1),
               stage2_vs_ideal=ratio(med['stage2'], i2),
               stage1_vs_peer=ratio(med['stage1'], med['peer'])
               if peer is not None else None,
               teacher_family='ddpm' if ddpm else 'compact',
               ideal1_ms=i1 * 1000, ideal2_ms=i2 * 1000)
    rows = [
        ['stage 1 (GuidanceDistiller.train_step)', med['stage1'] * 1000,
         i1 * 1000, res['stage1_vs_ideal']],
        ['stage 2 (ProgressiveDistiller.train_step)', med['stage2'] * 1000,
         i2 * 1000, res['stage2_vs_ideal']],
    ]
    body = markdown_table(['iteration', 'measured ms', 'ideal ms',
                           'measured / ideal'], rows)
    body += ('\n\nIdeal stage 1 = T_fb + T_f(2B), ideal stage 2 = T_fb + 2 '
             'T_f(B) with T_fb = student forward + backward + optimizer '
             'step (Adam, grad-norm clip 1, same OptimWrapper) on a '
             'precomputed target, T_f = frozen teacher forward under '
             f'no_grad. Batch B = {b}. Parts (ms): T_fb '
             f'{med["t_fb"] * 1000:.2f}, T_f(B) {med["t_f_b"] * 1000:.2f}, '
             f'T_f(2B) {med["t_f_2b"] * 1000:.2f}, T_f(B) w-conditioned '
             f'{med["t_f_b_w"] * 1000:.2f}; teacher training step '
             f'{med["teacher_train"] * 1000:.2f}. The measured steps '
             'include noise sampling, data preprocessing, the loss and the '
             'student EMA update (stage 1), which the ideal leaves out.')
    if ddpm:
        body = ('Teacher: the diffusers UNet2DModel DDPM folder '
                f'{DDPM_FOLDER} through DiffusersUNet2D (eps, linear '
                'betas; eps-MSE loss), student and stage-2 teacher the '
                'same network with the guidance embedding.\n\n' + body)
        log(body)
        return body, res
    body += '\n\nPeer (plain PyTorch stage 1, same batch):\n\n' + \
        markdown_table(['loop', 'ms / iteration', 'ratio to peer'], [
            ['mmdistill stage 1 (with EMA)', med['stage1'] * 1000,
             res['stage1_vs_peer']],
            ['plain: teacher called twice, autograd on, no EMA',
             med['peer'] * 1000, 1.0]])
    log(body)
    return body, res
