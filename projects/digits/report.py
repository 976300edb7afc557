"""Evaluation report of a distilled digits pipeline (used by the demo).

For every model and setting the same balanced labels and per-sample seeds
are used, so "FID to teacher" compares student and teacher samples drawn from
the same starting noise, and all numbers come from ``n`` samples.
"""
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional

import torch

STUDENT_STEPS = (1, 2, 4, 8)
GRID_WS = (0.0, 1.0, 2.0, 4.0)
METRIC_WS = (0.0, 2.0)


def generate(model, n, sample_kwargs, base_seed=0, batch_size=500):
    """``n`` samples with labels i % K and seeds base_seed + i (the
    evaluators' :class:`~mmdistill.evaluation.generative.SampleSource`);
    returns (images, labels, sampling seconds)."""
    from mmdistill.evaluation.generative import SampleSource
    src = SampleSource(model, sample_kwargs, base_seed=base_seed)
    out, labs, secs = [], [], 0.0
    for s in range(0, n, batch_size):
        t0 = time.perf_counter()
        imgs, labels = src(list(range(s, min(n, s + batch_size))))
        secs += time.perf_counter() - t0
        out.append(imgs), labs.append(labels)
    return torch.cat(out), torch.cat(labs), secs


def student_files(folder):
    """``{N: path}`` of the students in ``folder``: ``student_{N}step.pth``
    (a stage-2 work dir) or ``digits_student_{N}step.pth`` (the zoo)."""
    found = {}
    for n in STUDENT_STEPS:
        for name in (f'student_{n}step.pth', f'digits_student_{n}step.pth'):
            if osp.isfile(osp.join(folder, name)):
                found[n] = osp.join(folder, name)
                break
    return found


def load_students(folder, config=None):
    """The progressive students of ``folder`` (see :func:`student_files`),
    built from ``config`` (default: the config dumped in ``folder``)."""
    from mmdistill.apis import load_student
    return {n: load_student(path, config)
            for n, path in student_files(folder).items()}


def is_dit_folder(folder):
    """Whether ``folder`` is a latent DiT folder (``transformer/``)."""
    return osp.isdir(osp.join(folder, 'transformer'))


def load_ddpm_teacher(folder):
    """The CFG teacher of a pretrained folder alone: a DDPM folder (a
    diffusers UNet2DModel through ``DiffusersUNet2D``) or a DiT folder
    (``DiffusersDiT`` in the latent space of the folder's VAE)."""
    from mmengine.config import Config

    from mmdistill.apis import init_model
    if is_dit_folder(folder):
        model = dict(type='DiffusersCFGDiffusion', ema=None,
                     denoiser=dict(type='DiffusersDiT', pretrained=folder),
                     data_preprocessor=dict(type='LatentDataPreprocessor',
                                            vae=folder))
    else:
        model = dict(type='DiffusersCFGDiffusion', ema=None,
                     denoiser=dict(type='DiffusersUNet2D', pretrained=folder))
    return init_model(Config(dict(model=model)))


class DigitsScorer:
    """FID / IS / accuracy of generated digits with the digits classifier.

    Args:
        postprocess (callable, optional): maps generated images to the
            classifier's 8x8 input (the latent pipeline's decoded 16x16
            samples are brought back to 8x8).
    """

    def __init__(self, postprocess: Optional[Callable] = None) -> None:
        from mmdistill.datasets import DigitsDataset
        from mmdistill.evaluation import build_extractor
        self.ext = build_extractor('classifier')
        self.post = postprocess
        self.f_real = self.features(DigitsDataset('train').images)[0]

    def features(self, images):
        """(features, class probabilities) of 8x8 images, float64."""
        out = self.ext.extract(images, probs=True)
        return out['features'].double(), out['probs'].double()

    def metrics(self, f, p, labels, f_ref=None) -> Dict:
        """FID to the real training set (and to ``f_ref``), IS, accuracy."""
        from mmdistill.evaluation import (accuracy, fid_from_features,
                                          inception_score)
        return dict(fid_real=fid_from_features(f, self.f_real),
                    fid_teacher=None if f_ref is None else fid_from_features(
                        f, f_ref),
                    IS=inception_score(p.float()),
                    acc=100 * accuracy(p.float(), labels))

    def sample(self, model, n, sample_kwargs, cache=None) -> Dict:
        """Features, probabilities, labels and sampling time of ``n``
        samples of ``model``; with ``cache`` (a file) kept on disk."""
        if cache and osp.isfile(cache):
            return torch.load(cache, weights_only=True)
        imgs, labels, secs = generate(model, n, sample_kwargs)
        if self.post is not None:
            imgs = self.post(imgs)
        f, p = self.features(imgs)
        out = dict(f=f, p=p, labels=labels, secs=secs)
        if cache:
            from mmdistill.utils import atomic_torch_save
            os.makedirs(osp.dirname(cache) or '.', exist_ok=True)
            atomic_torch_save(out, cache)
        return out

    def measure(self, name, model, num_samples, steps, w, nfe, f_ref=None,
                cache=None, sample_kwargs=None, **extra):
        """One report row: ``num_samples`` samples of ``model`` at ``steps``
        and ``w`` (``extra``: more row entries); returns (row, features)."""
        kw = dict(steps=steps, guidance=w, **(sample_kwargs or {}))
        s = self.sample(model, num_samples, kw, cache)
        row = dict(model=name, steps=steps, nfe=nfe, w=w, **extra,
                   **self.metrics(s['f'], s['p'], s['labels'], f_ref),
                   ms=1000 * s['secs'] / num_samples)
        return row, s['f']


def say(line):
    """Print a progress line at once (also when stdout is a pipe)."""
    print(line, flush=True)


def row_line(prefix, row):
    """A report row as one progress line."""
    ref = '' if row['fid_teacher'] is None else \
        f" (to teacher {row['fid_teacher']:.2f})"
    return (f"[{prefix}] {row['model']:>10} {row['steps']:>4} steps "
            f"w={row['w']}: FID {row['fid_real']:.2f}{ref} acc "
            f"{row['acc']:.1f}%")


def measure_sweep(scorer, teacher, students, n, ref_steps, teacher_steps,
                  ws=METRIC_WS, prefix='demo', log=say, **kw):
    """The rows shared by the reports: for each w the teacher's
    ``ref_steps`` reference, the teacher at ``teacher_steps`` and every
    student, each scored against the reference at the same w."""
    rows, ref = [], {}

    def add(name, model, steps, w, nfe, f_ref=None):
        row, f = scorer.measure(name, model, n, steps, w, nfe, f_ref, **kw)
        rows.append(row)
        log(row_line(prefix, row))
        return f

    for w in ws:
        ref[w] = add('teacher', teacher, ref_steps, w,
                     ref_steps * (2 if w else 1))
    for w in ws:
        for s in teacher_steps:
            add('teacher', teacher, s, w, s * (2 if w else 1), ref[w])
    for n_steps, st in sorted(students.items()):
        for w in ws:
            add('student', st, n_steps, w, n_steps, ref[w])
    return rows


@torch.no_grad()
def evaluate_and_report(wd, teacher, s2_dir, n_eval=1000, ref_steps=256,
                        quick=False, timings=None):
    """Measure ``teacher`` (a built CFG model) and the students of
    ``s2_dir`` and write report.md, report.json, samples.png and
    fid_vs_nfe.png into ``wd``."""
    from mmdistill.datasets import DigitsDataset
    students = load_students(s2_dir)
    scorer = DigitsScorer()
    test = DigitsDataset('test')
    rows = [dict(model='real test (360)', steps='-', nfe='-', w='-',
                 **scorer.metrics(*scorer.features(test.images),
                                  test.labels), ms=None)]
    rows += measure_sweep(scorer, teacher, students, n_eval, ref_steps,
                          (1, 2, 4, 8, 16) if not quick else (2, ),
                          sample_kwargs=dict(sampler='ddim'))
    write_report(wd, rows, n_eval, ref_steps, timings)
    write_pictures(wd, teacher, students, ref_steps, rows)
    return rows


def fmt_value(v, nd=2):
    """A number, '-' for None, 'mean ± std' for an IS pair."""
    if v is None:
        return '-'
    if isinstance(v, (tuple, list)):
        return f'{v[0]:.{nd}f} ± {v[1]:.{nd}f}'
    return f'{v:.{nd}f}' if isinstance(v, float) else str(v)


def table_lines(rows):
    """The markdown table of report rows: model, steps, NFE, w, FID to real
    and to teacher, IS, accuracy, ms / image."""
    lines = ['| model | steps | NFE | w | FID to real | FID to teacher | IS | '
             'accuracy % | ms / image |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['nfe']} | {r['w']} | "
            f"{fmt_value(r['fid_real'])} | {fmt_value(r['fid_teacher'])} "
            f"| {fmt_value(r['IS'])} | {fmt_value(r['acc'], 1)} | "
            f"{fmt_value(r['ms'], 3)} |")
    return lines


def write_report(wd, rows, n_eval, ref_steps, timings):
    with open(osp.join(wd, 'report.json'), 'w') as f:
        json.dump(dict(rows=rows, n_eval=n_eval, timings=timings), f,
                  indent=1)
    lines = [
        '# mmdistill digits demo report', '',
        f'Metrics from {n_eval} generated samples per row (balanced classes, '
        'the same per-sample seeds for every row), features of the digits '
        'classifier (checkpoints/digits_classifier.pth). FID to real: '
        'against the 1437 real training images; FID to teacher: against '
        f'the teacher\'s {ref_steps}-step DDIM samples at the same w and '
        'seeds. NFE: network evaluations per image (the CFG teacher pays '
        '2 per step when w > 0). w follows (1 + w) x_c - w x_u.', '',
    ] + table_lines(rows)
    if timings:
        lines += ['', 'Training wall-clock (2-core CPU): ' + ', '.join(
            f'{k} {v / 60:.1f} min' for k, v in timings.items())]
    lines += ['', '![samples](samples.png)', '',
              '![FID vs NFE](fid_vs_nfe.png)']
    with open(osp.join(wd, 'report.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def plot_fid_vs_nfe(ax, rows, key='fid_real', ws=(0.0, 2.0), floor=None,
                    ylabel='FID to real (classifier features)'):
    """Teacher and student rows' ``key`` against NFE (log-log) on ``ax``,
    one line per model and w; ``floor`` draws the real-test line."""
    names = ['teacher'] + sorted({r['model'] for r in rows} - {'teacher'})
    for who in names:
        style = 'o--' if who == 'teacher' else 's-'
        for w in ws:
            pts = sorted((r['nfe'], r[key]) for r in rows
                         if r['model'] == who and r['w'] == w and
                         r.get(key) is not None)
            if pts:
                ax.plot(*zip(*pts), style, label=f'{who} w={w:g}')
    if floor is not None:
        ax.axhline(floor, color='gray', lw=0.8, label='real test vs train')
    ax.set_xscale('log', base=2), ax.set_yscale('log')
    ax.set_xlabel('network evaluations per image (NFE)')
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8), ax.grid(alpha=0.3)


def write_pictures(wd, teacher, students, ref_steps, rows, per_class=4,
                   cell=24):
    """samples.png: rows = models (students 1/2/4/8 steps, teacher), columns =
    w in GRID_WS; fid_vs_nfe.png: FID to real against NFE."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmdistill.utils.image import make_grid
    models = [(f'student {n} step' + ('s' if n > 1 else ''), m, n)
              for n, m in sorted(students.items())]
    models.append((f'teacher DDIM {ref_steps}', teacher, ref_steps))
    labels = torch.arange(teacher.num_classes).repeat(per_class)
    g = torch.Generator().manual_seed(123)
    noise = torch.randn((len(labels), ) + tuple(teacher.image_shape),
                        generator=g)
    grids = [[make_grid(model.sample(labels, noise=noise, steps=steps,
                                     guidance=w, sampler='ddim'),
                        nrow=teacher.num_classes, cell=cell, tight=True)
              for w in GRID_WS] for _, model, steps in models]
    # one grid pixel per figure pixel: nearest-neighbour digits, no blur
    dpi, gh, gw = 100, grids[0][0].shape[0], grids[0][0].shape[1]
    fig, axes = plt.subplots(
        len(models), len(GRID_WS), dpi=dpi, squeeze=False,
        figsize=(len(GRID_WS) * (gw + 12) / dpi + 0.3,
                 len(models) * (gh + 16) / dpi + 0.3))
    for i, (name, _, _) in enumerate(models):
        for j, w in enumerate(GRID_WS):
            ax = axes[i][j]
            ax.imshow(grids[i][j], cmap='gray', vmin=0, vmax=255,
                      interpolation='nearest')
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f'w = {w:g}', fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.3)
    fig.savefig(osp.join(wd, 'samples.png'), dpi=dpi)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    floor = next(r['fid_real'] for r in rows if r['model'].startswith('real'))
    plot_fid_vs_nfe(ax, rows, floor=floor)
    fig.tight_layout()
    fig.savefig(osp.join(wd, 'fid_vs_nfe.png'), dpi=110)
    plt.close(fig)
