"""Choose MGD3 synthesis settings on a validation split of the real
training set (the test split is never read).

    python tools/mgd3_select.py configs/mgd3/mgd3_digits_ipc10.py
    python tools/mgd3_select.py CONFIG --rows b e --out-dir D

Per row of the ablation (see ``mmdistill/synthesis/selection.py``:
DEFAULT_SELECTION, or the config's ``selection`` section) every grid
setting is synthesised from the 'fit' part and scored by the final-epoch
accuracy of the evaluation classifier on the held-out 'val' part. Writes
``OUT/selection.json``; finished candidates are reused when run again.
"""
import argparse
import os

from mmdistill.apis import add_common_args, cli_main, load_config


def parse_args():
    p = argparse.ArgumentParser(description='MGD3 hyper-parameter selection '
                                'on a validation split')
    p.add_argument('config', help='synthesis config (configs/mgd3/...)')
    p.add_argument('--rows', nargs='+', help='rows to select (default: all '
                   'rows of the selection grid)')
    p.add_argument('--out-dir', help='folder for candidates and '
                   'selection.json (default: work_dirs/mgd3_select/<config '
                   'name>)')
    p.add_argument('--jobs', type=int, default=1,
                   help='candidates evaluated in parallel, each in a '
                   'worker process with one thread (e.g. the number of '
                   'cores); the result does not depend on it')
    add_common_args(p)
    return p.parse_args()


def fmt(settings):
    return ' '.join(f'{k}={v}' if '.' in k else f'synthesis.{k}={v}'
                    for k, v in settings.items())


@cli_main
def main():
    from mmdistill import register_all_modules
    register_all_modules()
    from mmdistill.synthesis.selection import select
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    name = os.path.splitext(os.path.basename(args.config))[0]
    out_dir = args.out_dir or os.path.join('work_dirs', 'mgd3_select', name)
    res = select(cfg, out_dir, rows=args.rows, jobs=args.jobs)
    print(f'validation split: {res["holdout"]} of the training set; '
          f'metric: {res["metric"]} final-epoch accuracy')
    print('| row | selected settings | val acc | div. | repr. |')
    print('|-----|-------------------|--------:|-----:|------:|')
    for r, info in res['rows'].items():
        b = info['best']
        print(f'| {r} | `{fmt(b["settings"])}` | {b["val_acc"]:.2f} ± '
              f'{b["val_std"]:.2f} | {b["diversity"]:.3f} | '
              f'{b["representativeness"]:.3f} |')
    print(f'wrote {os.path.join(out_dir, "selection.json")}')


if __name__ == '__main__':
    main()
