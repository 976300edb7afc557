"""The MGD3 ablation table on the real test split, with the settings that
tools/mgd3_select.py chose on the validation split.

    python tools/mgd3_table.py configs/mgd3/mgd3_digits_ipc10.py \
        --selection work_dirs/mgd3_select/mgd3_digits_ipc10/selection.json

Every row of the selection file is synthesised from the config's full real
training set with its selected settings and evaluated on the test split;
``--reference`` adds the paper-default MGD3 line (lambda 0.1, t_stop 25,
w 2). Writes ``OUT/table.json`` and prints a markdown table.
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
    p.add_argument('--out-dir', help='output folder (default: '
                   'work_dirs/mgd3_table/<config name>)')
    add_common_args(p)
    return p.parse_args()


@cli_main
def main():
    import mmdistill  # noqa: F401  (registers the components)
    from mmdistill.synthesis.selection import REFERENCE, run_rows
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
    todo = {r: sel['rows'][r]['best']['settings'] for r in rows}
    if args.reference:
        todo['ref'] = dict(REFERENCE)
    name = os.path.splitext(os.path.basename(args.config))[0]
    out_dir = args.out_dir or os.path.join('work_dirs', 'mgd3_table', name)
    res = run_rows(cfg, todo, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write(os.path.join(out_dir, 'table.json'),
                 lambda f: f.write(json.dumps(res, indent=1).encode()))
    metric = sel.get('metric', 'ConvNet')
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
    print(f'wrote {os.path.join(out_dir, "table.json")}')


if __name__ == '__main__':
    main()
