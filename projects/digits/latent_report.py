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
import time

import torch

from .vae import downsample_exact, upsample

METRIC_WS = (0.0, 2.0)


def _measure(ext, images, labels, f_real, f_ref=None):
    """FID to real (and to the reference features), IS and accuracy of 8x8
    images; returns (row metrics, features)."""
    from mmdistill.evaluation import (accuracy, fid_from_features,
                                      inception_score)
    out = ext.extract(images, probs=True)
    f, p = out['features'].double(), out['probs'].double()
    return dict(fid_real=fid_from_features(f, f_real),
                fid_teacher=None if f_ref is None else fid_from_features(
                    f, f_ref),
                IS=inception_score(p.float()),
                acc=100 * accuracy(p.float(), labels)), f


@torch.no_grad()
def evaluate_latent_digits(wd, teacher_cfg, teacher_ckpt, s2_dir, n_eval=1000,
                           ref_steps=256, teacher_steps=(1, 2, 4, 8, 16),
                           ws=METRIC_WS, timings=None, pictures=True,
                           log=print):
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
    from projects.digits.report import generate, load_students
    from mmdistill.datasets import DigitsDataset
    from mmdistill.evaluation import build_extractor
    teacher = init_model(Config.fromfile(teacher_cfg), teacher_ckpt)
    students = load_students(s2_dir)
    pre = teacher.data_preprocessor
    size = pre.vae.vae.config.sample_size
    ext = build_extractor('classifier')
    train, test = DigitsDataset('train'), DigitsDataset('test')
    f_real = ext.extract(train.images, probs=False)['features'].double()
    rows = []
    m, _ = _measure(ext, test.images, test.labels, f_real)
    rows.append(dict(model='real test (360)', steps='-', nfe='-', w='-',
                     ms=None, **m))
    for name, d in (('train', train), ('test', test)):
        rec = downsample_exact(pre.decode(pre.encode(upsample(d.images,
                                                              size))))
        m, _ = _measure(ext, rec, d.labels, f_real)
        rows.append(dict(model=f'VAE reconstruction, {name} '
                         f'({len(d.labels)})', steps='-', nfe='-', w='-',
                         ms=None, **m))
        log(f'[latent] VAE floor {name}: FID {m["fid_real"]:.2f} '
            f'acc {m["acc"]:.1f}%')

    def measure(name, model, steps, w, nfe, ref=None):
        t0 = time.perf_counter()
        imgs, labels, secs = generate(model, n_eval, dict(
            steps=steps, guidance=w, sampler='ddim'))
        m, f = _measure(ext, downsample_exact(imgs), labels, f_real, ref)
        rows.append(dict(model=name, steps=steps, nfe=nfe, w=w,
                         ms=1000 * secs / n_eval, **m))
        log(f'[latent] {name:>8} {steps:>4} steps w={w}: FID '
            f'{m["fid_real"]:.2f}' + ('' if ref is None else
                                      f' (to teacher {m["fid_teacher"]:.2f})')
            + f' acc {m["acc"]:.1f}% ({time.perf_counter() - t0:.0f} s)',
            flush=True)
        return f

    ref = {w: measure('teacher', teacher, ref_steps, w,
                      ref_steps * (2 if w else 1)) for w in ws}
    for w in ws:
        for s in teacher_steps:
            measure('teacher', teacher, s, w, s * (2 if w else 1), ref[w])
    for n, st in sorted(students.items()):
        for w in ws:
            measure('student', st, n, w, n, ref[w])
    write_latent_report(wd, rows, n_eval, ref_steps, timings)
    if pictures:
        from projects.digits.report import write_pictures
        write_pictures(wd, teacher, students, ref_steps, rows)
    return rows


def write_latent_report(wd, rows, n_eval, ref_steps, timings=None):
    """``report.json`` and ``report.md`` (one table row per measurement)."""
    from projects.digits.report import table_lines
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
