"""The MGD3 ablation table on the real test split, with the settings that
tools/mgd3_select.py chose on the validation split.

    python tools/mgd3_table.py configs/mgd3/mgd3_digits_ipc10.py \
        --selection work_dirs/mgd3_select/mgd3_digits_ipc10/selection.json

Every row of the selection file is synthesised from the config's full real
training set with its selected settings and evaluated on the test split;
``--reference`` adds the paper-default MGD3 line (lambda 0.1, t_stop 25,
w 2). Writes ``OUT/table.json`` and prints a markdown table.

``--seeds 0 1 2 3 4`` runs every row once per synthesis seed (images,
k-means, real subset) and pools the accuracies (synthesis seeds x
classifier seeds); ``--baseline b`` then also prints each row's gain over
row b paired by synthesis seed (mean, std and wins over the seeds).
"""
import argparse
import json
import math
import os

from mmdistill.apis import add_common_args, cli_main, load_config
from mmdistill.utils import UserError, atomic_write


def parse_args():
    p = argparse.ArgumentParser(description='MGD3 ablation table with '
                                'validation-selected settings')
    p.add_argument('config', help='synthesis config (configs/mgd3/...)')
    p.add_argument('--selection', required=True,
                   help='selection.json written by tools/mgd3_select.py')
    p.add_argument('--rows', nargs='+', help='rows to run (default: all '
                   'rows of the selection file)')
    p.add_argument('--reference', action='store_true',
                   help='add the paper-default MGD3 line (row "ref")')
    p.add_argument('--seeds', nargs='+', type=int,
                   help='synthesis seeds: run each row once per seed and '
                   'pool (default: the config seed only)')
    p.add_argument('--baseline', help='with --seeds: print the gain of each '
                   'row over this row, paired by synthesis seed (e.g. b)')
    p.add_argument('--out-dir', help='output folder (default: '
                   'work_dirs/mgd3_table/<config name>)')
    add_common_args(p)
    return p.parse_args()


@cli_main
def main():
    from mmdistill import register_all_modules
    register_all_modules()
    from mmdistill.synthesis.selection import REFERENCE, paired_gap, run_rows
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    if not os.path.isfile(args.selection):
        raise UserError(f'{args.selection} not found (run '
                        'tools/mgd3_select.py first)')
    with open(args.selection) as f:
        sel = json.load(f)
    rows = args.rows or list(sel['rows'])
    missing = [r for r in rows if r not in sel['rows']]
    if missing:
        raise UserError(f'rows {missing} are not in {args.selection} (it has '
                        f'{sorted(sel["rows"])})')
    if args.baseline and not args.seeds:
        raise UserError('--baseline needs --seeds (the gain is paired by '
                        'synthesis seed)')
    if args.baseline and args.baseline not in rows:
        raise UserError(f'--baseline {args.baseline} is not one of the rows '
                        f'{rows}')
    todo = {r: sel['rows'][r]['best']['settings'] for r in rows}
    if args.reference:
        todo['ref'] = dict(REFERENCE)
    name = os.path.splitext(os.path.basename(args.config))[0]
    out_dir = args.out_dir or os.path.join('work_dirs', 'mgd3_table', name)
    res = run_rows(cfg, todo, out_dir, seeds=args.seeds)
    metric = sel.get('metric', 'ConvNet')
    if args.baseline:  # stored with the rows, printed below the table
        for r, v in res.items():
            if r != args.baseline:
                v['gain_over_' + args.baseline] = paired_gap(
                    v, res[args.baseline], metric)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write(os.path.join(out_dir, 'table.json'),
                 lambda f: f.write(json.dumps(res, indent=1).encode()))
    feat = all('diversity_feat' in v for v in res.values())
    cols = ['div.', 'repr.'] + (['div. (feat)', 'repr. (feat)'] if feat
                                else [])
    print('| row | settings | test acc | ' + ' | '.join(cols) + ' |')
    print('|-----|----------|---------:|' + '-----:|' * len(cols))
    keys = ['diversity', 'representativeness'] + (
        ['diversity_feat', 'representativeness_feat'] if feat else [])
    for r, v in res.items():
        s = ' '.join(f'{k}={x}' for k, x in v['settings'].items())
        vals = ['-' if math.isnan(v[k]) else f'{v[k]:.3f}' for k in keys]
        print(f'| {r} | {s} | {v[metric]["mean"]:.2f} ± '
              f'{v[metric]["std"]:.2f} | ' + ' | '.join(vals) + ' |')
    if args.baseline:
        print(f'\ngain over row {args.baseline}, paired by synthesis seed '
              f'{args.seeds} ({metric}, each the mean over the classifier '
              'seeds):')
        for r, v in res.items():
            g = v.get('gain_over_' + args.baseline)
            if g is None:
                continue
            ds = ' '.join(f'{d:+.2f}' for d in g['diffs'])
            print(f'  {r}: {g["mean"]:+.2f} ± {g["std"]:.2f} (wins '
                  f'{g["wins"]}/{len(g["diffs"])}; per seed {ds})')
    print(f'wrote {os.path.join(out_dir, "table.json")}')


if __name__ == '__main__':
    main()
