"""Evaluation report of a distilled digits pipeline (used by the demo).

For every model and setting the same balanced labels and per-sample seeds
are used, so "FID to teacher" compares student and teacher samples drawn from
the same starting noise, and all numbers come from ``n`` samples.
"""
import json
import os.path as osp
import time

import torch

STUDENT_STEPS = (1, 2, 4, 8)
GRID_WS = (0.0, 1.0, 2.0, 4.0)


def generate(model, n, sample_kwargs, base_seed=0, batch_size=500):
    """``n`` samples with labels i % K and seeds base_seed + i; returns
    (images, labels, seconds)."""
    k = model.num_classes
    out, labs, secs = [], [], 0.0
    for s in range(0, n, batch_size):
        idx = range(s, min(n, s + batch_size))
        gens = [torch.Generator().manual_seed(base_seed + i) for i in idx]
        noise = torch.stack([torch.randn(tuple(model.image_shape),
                                         generator=g) for g in gens])
        labels = torch.tensor([i % k for i in idx])
        t0 = time.perf_counter()
        out.append(model.sample(labels, noise=noise, generator=gens,
                                **sample_kwargs))
        secs += time.perf_counter() - t0
        labs.append(labels)
    return torch.cat(out), torch.cat(labs), secs


def load_students(s2_dir, small_cfg=()):
    """The progressive students ``student_{N}step.pth`` of a stage-2 run."""
    from mmengine.config import Config

    from mmdistill.apis import init_model
    cfg = Config.fromfile(osp.join(s2_dir, osp.basename(_stage2_cfg_name(
        s2_dir))))
    students = {}
    for n in STUDENT_STEPS:
        path = osp.join(s2_dir, f'student_{n}step.pth')
        if osp.isfile(path):
            # a student file holds the network ('net.*'): it initialises the
            # distiller's student exactly as a stage-1 checkpoint would
            cfg.model.teacher_ckpt, cfg.model.num_steps = path, n
            students[n] = init_model(cfg)
    return students


def _stage2_cfg_name(s2_dir):
    import glob
    cfgs = sorted(glob.glob(osp.join(s2_dir, '*.py')))
    return cfgs[0]


def _features(extractor, images):
    out = extractor.extract(images, probs=True)
    return out['features'].double(), out['probs'].double()


@torch.no_grad()
def evaluate_and_report(wd, teacher_ckpt, s2_dir, n_eval=1000, ref_steps=256,
                        quick=False, small_cfg=(), timings=None):
    """Measure teacher and students and write report.md, report.json,
    samples.png and fid_vs_nfe.png into ``wd``."""
    from mmengine.config import Config

    from mmdistill.apis import init_model
    from mmdistill.datasets import DigitsDataset
    from mmdistill.evaluation import (accuracy, build_extractor,
                                      fid_from_features, inception_score)
    from mmdistill.evaluation.extractors import resolve_repo_path
    dumped = osp.join(osp.dirname(teacher_ckpt), 'cfg_unet_digits.py')
    tcfg = Config.fromfile(dumped if osp.isfile(dumped) else
                           resolve_repo_path(
                               'configs/teacher/cfg_unet_digits.py'))
    teacher = init_model(tcfg, teacher_ckpt)
    students = load_students(s2_dir, small_cfg)
    ext = build_extractor('classifier')
    real = DigitsDataset('train').images
    f_real, _ = _features(ext, real)
    f_test, p_test = _features(ext, DigitsDataset('test').images)
    rows = [dict(model='real test (360)', steps='-', nfe='-', w='-',
                 fid_real=fid_from_features(f_test, f_real),
                 fid_teacher=None, IS=inception_score(p_test.float()),
                 acc=100 * accuracy(p_test.float(),
                                    DigitsDataset('test').labels),
                 ms=None)]

    def measure(name, model, steps, w, nfe, ref=None):
        imgs, labels, secs = generate(model, n_eval, dict(
            steps=steps, guidance=w, sampler='ddim'))
        f, p = _features(ext, imgs)
        row = dict(model=name, steps=steps, nfe=nfe, w=w,
                   fid_real=fid_from_features(f, f_real),
                   fid_teacher=None if ref is None else fid_from_features(
                       f, ref),
                   IS=inception_score(p.float()),
                   acc=100 * accuracy(p.float(), labels),
                   ms=1000 * secs / n_eval)
        rows.append(row)
        print(f"[demo] {name:>10} {steps:>4} steps w={w}: FID {row['fid_real']:.2f}"
              f" acc {row['acc']:.1f}%", flush=True)
        return f, imgs

    metric_ws = (0.0, 2.0)
    ref_feats, grids = {}, {}
    for w in metric_ws:
        ref_feats[w], grids[('teacher', w)] = measure(
            f'teacher', teacher, ref_steps, w, ref_steps * (2 if w else 1))
    teacher_curve = (1, 2, 4, 8, 16) if not quick else (2, )
    for w in metric_ws:
        for s in teacher_curve:
            measure('teacher', teacher, s, w, s * (2 if w else 1),
                    ref_feats[w])
    for n, st in sorted(students.items()):
        for w in metric_ws:
            _, grids[(n, w)] = measure('student', st, n, w, n, ref_feats[w])
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
             'accuracy % | ms / image |', '|---|---|---|---|---|---|---|---|---|']
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
    lines += ['', '![samples](samples.png)', '', '![FID vs NFE](fid_vs_nfe.png)']
    with open(osp.join(wd, 'report.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def plot_fid_vs_nfe(ax, rows, key='fid_real', ws=(0.0, 2.0), floor=None,
                    ylabel='FID to real (classifier features)'):
    """Teacher and student rows' ``key`` against NFE (log-log) on ``ax``,
    one line per model and w; ``floor`` draws the real-test line."""
    for who, style in (('teacher', 'o--'), ('student', 's-')):
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


def write_pictures(wd, teacher, students, ref_steps, rows, per_class=4):
    """samples.png: rows = models (students 1/2/4/8 steps, teacher), columns =
    w in GRID_WS; fid_vs_nfe.png: FID to real against NFE."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmdistill.utils.image import make_grid
    models = [(f'student {n} step' + ('s' if n > 1 else ''), m, n)
              for n, m in sorted(students.items())]
    models.append((f'teacher DDIM {ref_steps}', teacher, ref_steps))
    fig, axes = plt.subplots(len(models), len(GRID_WS),
                             figsize=(2.2 * len(GRID_WS), 2.2 * len(models)),
                             squeeze=False)
    labels = torch.arange(teacher.num_classes).repeat(per_class)
    g = torch.Generator().manual_seed(123)
    noise = torch.randn((len(labels), ) + tuple(teacher.image_shape),
                        generator=g)
    for i, (name, model, steps) in enumerate(models):
        for j, w in enumerate(GRID_WS):
            imgs = model.sample(labels, noise=noise, steps=steps, guidance=w,
                                sampler='ddim')
            ax = axes[i][j]
            ax.imshow(make_grid(imgs, nrow=teacher.num_classes), cmap='gray',
                      vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f'w = {w:g}')
            if j == 0:
                ax.set_ylabel(name)
    fig.tight_layout()
    fig.savefig(osp.join(wd, 'samples.png'), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    floor = next(r['fid_real'] for r in rows if r['model'].startswith('real'))
    plot_fid_vs_nfe(ax, rows, floor=floor)
    fig.tight_layout()
    fig.savefig(osp.join(wd, 'fid_vs_nfe.png'), dpi=110)
    plt.close(fig)
