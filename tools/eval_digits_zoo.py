"""Measure the digits model-zoo checkpoints (the tables in model_zoo.md).

    python tools/eval_digits_zoo.py --teacher checkpoints/digits_teacher.pth \
        --students checkpoints --n-main 5000 --n-range 1000

``--teacher-folder checkpoints/ddpm-unet2d-digits --students DIR_EPS DIR_V
--student-names eps v --tables main`` measures the real-format teacher and
its students (stage-2 work dirs, their dumped configs).

Main table (``--n-main`` samples, w = 0 and 2): teacher with 256 DDIM steps,
the same teacher at 1/2/4/8 CFG-DDIM steps, students at 1/2/4/8 steps: FID to
the real training set, FID to the teacher's 256-step samples (same labels,
same seeds, same w), IS and sample accuracy. Range table (``--n-range``
samples): the same for w in {0, 0.5, 1, 2, 4}, against the teacher's
``--range-ref-steps`` samples. Teacher reference features are cached in
``--ref-cache`` (keyed by the checkpoint's hash), so they are generated once;
``--only-refs`` generates them and stops.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdistill.apis import cli_main  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--teacher', default='checkpoints/digits_teacher.pth')
    p.add_argument('--teacher-folder', default=None,
                   help='a DDPM folder (diffusers UNet2DModel) or a '
                   'latent DiT folder (transformer/, vae/) as the teacher '
                   'instead of --teacher')
    p.add_argument('--students', nargs='+', default=['checkpoints'],
                   help='folders with digits_student_{N}step.pth (the zoo) '
                   'or student_{N}step.pth (a stage-2 work dir)')
    p.add_argument('--student-names', nargs='*', default=None,
                   help='a row label per --students folder (default: '
                   "'student')")
    p.add_argument('--student-config', default=None,
                   help='config of the students (default: the one dumped '
                   'in their folder; the zoo folder: '
                   'configs/progressive/progressive_digits_128to1.py)')
    p.add_argument('--tables', default='main,range',
                   help="comma-separated: 'main', 'range'")
    p.add_argument('--n-main', type=int, default=5000)
    p.add_argument('--n-range', type=int, default=1000)
    p.add_argument('--ref-steps', type=int, default=256,
                   help='DDIM steps of the teacher reference (main table)')
    p.add_argument('--range-ref-steps', type=int, default=64,
                   help='DDIM steps of the teacher reference (w-range '
                   'table)')
    p.add_argument('--out', default='work_dirs/zoo_eval')
    p.add_argument('--ref-cache', default='work_dirs/zoo_eval/ref_cache',
                   help='folder keeping the features of the teacher\'s '
                   'reference samples (keyed by checkpoint hash, steps, w, '
                   'n), so they are generated once')
    p.add_argument('--ws', default=None,
                   help="comma-separated w of the main table (default '0,2')")
    p.add_argument('--students-only', action='store_true',
                   help='only the student rows, FID to real (no teacher '
                   'reference: a quick comparison of students at w = 0)')
    p.add_argument('--only-refs', action='store_true',
                   help='only generate the teacher reference samples')
    p.add_argument('--render', action='store_true',
                   help='only re-write zoo.md from the rows in zoo.json')
    p.add_argument('--debug', action='store_true')
    return p.parse_args()


def render_markdown(rows):
    """The model-zoo tables (main, w range, acceptance) from the rows."""
    from projects.digits.report import fmt_value as fmt
    out = []
    for table in ('main', 'range'):
        sel = [r for r in rows if r['table'] == table]
        if not sel:
            continue
        out += [f'### {table} table ({sel[0]["n"]} samples per row)', '',
                '| model | steps | NFE | w | FID to real | FID to teacher '
                '| IS | accuracy % |', '|---|---|---|---|---|---|---|---|']
        for r in sel:
            out.append(f'| {r["model"]} | {r["steps"]} | {r["nfe"]} | '
                       f'{r["w"]:g} | {fmt(r["fid_real"])} | '
                       f'{fmt(r["fid_teacher"])} | {fmt(r["IS"])} | '
                       f'{fmt(r["acc"], 1)} |')
        out.append('')
    main = {(r['model'], r['steps'], r['w']): r for r in rows
            if r['table'] == 'main'}
    ref = main.get(('teacher', 256, 0.0))
    if ref:
        out += ['### acceptance (w = 0, FID to real vs the 256-step teacher)',
                '', '| student steps | FID | ratio | target | met |',
                '|---|---|---|---|---|']
        names = sorted({r['model'] for r in rows if r['model'] != 'teacher'})
        for name in names:
            for steps, target in ((8, 1.25), (4, 1.5), (1, 4.0)):
                r = main.get((name, steps, 0.0))
                if r:
                    ratio = r['fid_real'] / ref['fid_real']
                    label = steps if names == ['student'] else \
                        f'{name}, {steps}'
                    out.append(f'| {label} | {r["fid_real"]:.2f} | '
                               f'{ratio:.2f}x | <= {target}x | '
                               f'{"yes" if ratio <= target else "no"} |')
        out.append('')
    return '\n'.join(out)


def plot_zoo(rows, out):
    """zoo_fid_vs_nfe.png: w = 0 FID to real and w = 2 FID to the teacher's
    256-step samples against NFE (main table)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from projects.digits.report import plot_fid_vs_nfe
    main = [r for r in rows if r['table'] == 'main']
    fig, (a0, a2) = plt.subplots(1, 2, figsize=(10, 4))
    plot_fid_vs_nfe(a0, [r for r in main if r['steps'] != 256], ws=(0.0, ))
    ref = [r for r in main if r['steps'] == 256 and r['w'] == 0.0]
    if ref:
        a0.axhline(ref[0]['fid_real'], color='k', lw=0.8,
                   label='teacher, 256 steps')
        a0.legend(fontsize=8)
    a0.set_title('w = 0: quality')
    plot_fid_vs_nfe(a2, main, key='fid_teacher', ws=(2.0, ),
                    ylabel="FID to the teacher's 256-step samples")
    a2.set_title('w = 2: faithfulness')
    fig.tight_layout()
    path = osp.join(out, 'zoo_fid_vs_nfe.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def folder_hash(folder):
    """A short hash of a diffusers folder's network weights (the key of its
    cached reference samples)."""
    import glob

    from mmdistill.utils import file_sha256
    files = sorted(glob.glob(osp.join(folder, '*', '*.safetensors')))
    return '-'.join(file_sha256(f, 6) for f in files) or 'folder'


@cli_main
def main():
    import torch
    from mmengine.config import Config

    from mmdistill.apis import init_model
    from mmdistill.utils import UserError, file_sha256
    from projects.digits.report import (DigitsScorer, is_dit_folder,
                                        load_ddpm_teacher, load_students)
    from projects.digits.vae import downsample_exact
    args = parse_args()
    if args.render:
        with open(osp.join(args.out, 'zoo.json')) as fh:
            rows = json.load(fh)
        with open(osp.join(args.out, 'zoo.md'), 'w') as fh:
            fh.write(render_markdown(rows))
        print(render_markdown(rows))
        print(f'picture: {plot_zoo(rows, args.out)}')
        return
    torch.set_grad_enabled(False)
    os.makedirs(args.out, exist_ok=True)
    if args.teacher_folder:
        teacher = load_ddpm_teacher(args.teacher_folder)
        t_hash = folder_hash(args.teacher_folder)
    else:
        teacher = init_model(
            Config.fromfile('configs/teacher/cfg_unet_digits.py'),
            args.teacher)
        t_hash = file_sha256(args.teacher, 12)
    names = args.student_names or ['student'] * len(args.students)
    if len(names) != len(args.students):
        raise UserError(f'{len(names)} --student-names for '
                        f'{len(args.students)} --students folders; give one '
                        'name per folder')
    groups = []
    for name, folder in zip(names, args.students):
        config = args.student_config or (
            'configs/progressive/progressive_digits_128to1.py'
            if osp.normpath(folder) == 'checkpoints' else None)
        groups.append((name, load_students(folder, config)))
    tables = [t for t in args.tables.split(',') if t]
    # a latent DiT's samples are decoded to 16x16: back to the 8x8 digits
    latent = bool(args.teacher_folder) and is_dit_folder(args.teacher_folder)
    scorer = DigitsScorer(postprocess=downsample_exact if latent else None)
    rows = []

    def cache(steps, w, n):
        return osp.join(args.ref_cache, f'{t_hash}_s{steps}_w{w:g}_n{n}.pt')

    def run(table, name, model, steps, w, nfe, n, ref):
        t0 = time.time()
        r, f = scorer.measure(name, model, n, steps, w, nfe, ref,
                              cache=cache(steps, w, n) if ref is None and
                              name == 'teacher' else None, table=table, n=n)
        rows.append(r)
        print(json.dumps(r), f'({time.time() - t0:.0f}s)', flush=True)
        with open(osp.join(args.out, 'zoo.json'), 'w') as fh:
            json.dump(rows, fh, indent=1)
        with open(osp.join(args.out, 'zoo.md'), 'w') as fh:
            fh.write(render_markdown(rows))
        return f

    main_ws = tuple(float(w) for w in args.ws.split(',')) if args.ws \
        else (0.0, 2.0)
    for table, n, ws, ref_steps in (
            ('main', args.n_main, main_ws, args.ref_steps),
            ('range', args.n_range, (0.0, 0.5, 1.0, 2.0, 4.0),
             args.range_ref_steps)):
        if table not in tables:
            continue
        for w in ws:
            k = 2 if w else 1
            if args.only_refs:
                scorer.sample(teacher, n, dict(steps=ref_steps, guidance=w),
                              cache(ref_steps, w, n))
                print(f'reference {ref_steps} steps w={w:g} n={n} ready',
                      flush=True)
                continue
            if args.students_only:
                ref = None
            else:
                ref = run(table, 'teacher', teacher, ref_steps, w,
                          k * ref_steps, n, None)
                for s in ((1, 2, 4, 8) if table == 'main' else ()):
                    run(table, 'teacher', teacher, s, w, k * s, n, ref)
            for name, students in groups:
                for s, st in students.items():
                    run(table, name, st, s, w, s, n, ref)


if __name__ == '__main__':
    main()
