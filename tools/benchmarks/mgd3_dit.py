"""Section ``mgd3_dit``: MGD3 synthesis with the latent DiT of digits
against its distilled students, measured in one run.

Digits IPC 10 (100 images, k-means modes on the VAE latents) three ways:
the teacher (``configs/mgd3/mgd3_dit_digits_ipc10.py``: 50 DDPM steps with
CFG, 100 network evaluations per image), the 4-step student
(``mgd3_dit_digits_ipc10_student4.py``: 4 evaluations) and the 1-step
student (``..._student1.py``). Timed: ``Synthesizer.run`` into a fresh
folder (mode discovery, sampling, VAE decoding and PNG writing; the models
are built once, before the rounds), in interleaved rounds, median.
Target: the 4-step student at least 10x faster than the teacher.
"""
import argparse
import os.path as osp
import tempfile
from typing import Any, Dict, Tuple

from .common import ROOT, Log, interleaved, markdown_table, ratio, verdict

TITLE = 'MGD3 synthesis, latent DiT of digits: teacher vs distilled students'

CONFIGS = dict(
    teacher='configs/mgd3/mgd3_dit_digits_ipc10.py',
    student4='configs/mgd3/mgd3_dit_digits_ipc10_student4.py',
    student1='configs/mgd3/mgd3_dit_digits_ipc10_student1.py')
NFE = dict(teacher=100, student4=4, student1=1)


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section (``--quick``: one round).

    Returns:
        The markdown body and the raw results (``seconds`` per generator,
        ``speedup`` of each student over the teacher).
    """
    from mmdistill.apis import load_config
    from mmdistill.synthesis.pipeline import Synthesizer
    from mmdistill.utils import UserError
    synths, fns, tmp = {}, {}, tempfile.TemporaryDirectory()
    for name, path in CONFIGS.items():
        cfg = load_config(osp.join(ROOT, path))
        if name != 'teacher' and not osp.isfile(
                osp.join(ROOT, cfg.generator.checkpoint)):
            raise UserError(f'{cfg.generator.checkpoint} not found (a '
                            'shipped student of checkpoints/); skip the '
                            'section or restore the file')
        for k in ('transformer', 'vae', 'checkpoint', 'config'):
            if k in cfg.generator:
                cfg.generator[k] = osp.join(ROOT, cfg.generator[k])
        s = Synthesizer(cfg, osp.join(tmp.name, name), progress=False,
                        log=lambda *a: None)
        s._gen()  # build the model outside the timed rounds
        synths[name] = (s, cfg)

        def once(name=name):
            s, cfg = synths[name]
            out = tempfile.mkdtemp(dir=tmp.name)
            fresh = Synthesizer(cfg, out, overwrite=True, progress=False,
                                log=lambda *a: None)
            fresh.generator = s.generator
            return fresh.run()
        fns[name] = once
    rounds = 1 if args.quick else 3
    secs, _ = interleaved(fns, repeats=rounds, warmup=1, min_round_s=0.0)
    tmp.cleanup()
    speed = {k: ratio(secs['teacher'], secs[k]) for k in secs}
    for k in secs:
        log(f'{k}: {secs[k]:.2f} s ({speed[k]:.1f}x)')
    body = markdown_table(
        ['generator', 'steps', 'network evaluations / image', 'seconds',
         'speed-up over the teacher'],
        [[k, synths[k][1].synthesis.steps, NFE[k], f'{secs[k]:.2f}',
          f'{speed[k]:.1f}x'] for k in secs])
    body += ('\n\n100 images (IPC 10) with mode discovery, sampling, VAE '
             'decoding and PNG writing; models built before the rounds; '
             f'median of {rounds} interleaved round(s). Target: 4-step '
             f'student >= 10x faster: {verdict(speed["student4"] >= 10)}.')
    return body, dict(seconds=secs, speedup=speed)
