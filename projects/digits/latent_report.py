"""Evaluation report of the latent-space digits pipeline
(``tools/latent_digits.py``).

The measurements are those of the pixel-space demo report
(:mod:`projects.digits.report`): the same balanced labels and per-sample
seeds for every row, features and class probabilities of the digits
classifier, FID to the 1437 real training images and to the teacher's
many-step samples at the same w and seeds. Generated latents are decoded by
the VAE (16x16) and brought back to 8x8 by
:func:`~projects.digits.vae.downsample_exact` before the
classifier sees them. Two extra rows give the VAE's reconstruction floor:
decode(encode(real)) of the training and of the test images.
"""
import json
import os.path as osp

import torch

from .report import (METRIC_WS, DigitsScorer, load_students, measure_sweep,
                     say, table_lines, write_pictures)
from .vae import downsample_exact, upsample


@torch.no_grad()
def evaluate_latent_digits(wd, teacher_cfg, teacher_ckpt, s2_dir, n_eval=1000,
                           ref_steps=256, teacher_steps=(1, 2, 4, 8, 16),
                           ws=METRIC_WS, timings=None, pictures=True,
                           log=say):
    """Measure the VAE floor, the latent teacher and the students of
    ``s2_dir``; write ``report.md`` / ``report.json`` (and ``samples.png``,
    ``fid_vs_nfe.png`` with ``pictures``) into ``wd``. Returns the rows.

    Args:
        wd (str): output folder.
        teacher_cfg (str): the teacher's (dumped) training config.
        teacher_ckpt (str): its checkpoint.
        s2_dir (str): the stage-2 work dir (``student_{N}step.pth``).
        n_eval (int): generated samples per row.
        ref_steps (int): DDIM steps of the reference teacher.
        teacher_steps (tuple[int]): the teacher's few-step rows.
        ws (tuple[float]): guidance weights measured.
    """
    from mmengine.config import Config

    from mmdistill.apis import init_model
    from mmdistill.datasets import DigitsDataset
    teacher = init_model(Config.fromfile(teacher_cfg), teacher_ckpt)
    students = load_students(s2_dir)
    pre = teacher.data_preprocessor
    size = pre.vae.vae.config.sample_size
    scorer = DigitsScorer(postprocess=downsample_exact)
    train, test = DigitsDataset('train'), DigitsDataset('test')
    rows = [dict(model='real test (360)', steps='-', nfe='-', w='-',
                 **scorer.metrics(*scorer.features(test.images),
                                  test.labels), ms=None)]
    for name, d in (('train', train), ('test', test)):
        rec = downsample_exact(pre.decode(pre.encode(upsample(d.images,
                                                              size))))
        m = scorer.metrics(*scorer.features(rec), d.labels)
        rows.append(dict(model=f'VAE reconstruction, {name} '
                         f'({len(d.labels)})', steps='-', nfe='-', w='-',
                         **m, ms=None))
        log(f'[latent] VAE floor {name}: FID {m["fid_real"]:.2f} '
            f'acc {m["acc"]:.1f}%')
    rows += measure_sweep(scorer, teacher, students, n_eval, ref_steps,
                          teacher_steps, ws, prefix='latent', log=log,
                          sample_kwargs=dict(sampler='ddim'))
    write_latent_report(wd, rows, n_eval, ref_steps, timings)
    if pictures:
        write_pictures(wd, teacher, students, ref_steps, rows)
    return rows


def write_latent_report(wd, rows, n_eval, ref_steps, timings=None):
    """``report.json`` and ``report.md`` (one table row per measurement)."""
    with open(osp.join(wd, 'report.json'), 'w') as f:
        json.dump(dict(rows=rows, n_eval=n_eval, ref_steps=ref_steps,
                       timings=timings), f, indent=1)
    lines = [
        '# mmdistill latent-space digits report', '',
        'Digits upsampled to 16x16, a VAE with 4x4x4 latents, diffusion on '
        'the latents. Metrics from the digits classifier on decoded samples '
        'brought back to 8x8 (least-squares inverse of the upsampling), '
        f'{n_eval} generated samples per row (balanced classes, the same '
        'per-sample seeds for every row). FID to real: against the 1437 '
        f'real training images; FID to teacher: against the teacher\'s '
        f'{ref_steps}-step DDIM samples at the same w and seeds. NFE: '
        'network evaluations per image (the CFG teacher pays 2 per step '
        'when w > 0); ms / image includes the VAE decoding.', ''
    ] + table_lines(rows)
    if timings:
        lines += ['', 'Wall-clock (CPU, 1 thread): ' + ', '.join(
            f'{k} {v / 60:.1f} min' for k, v in timings.items())]
    with open(osp.join(wd, 'report.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
