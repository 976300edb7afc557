"""Accuracy per MGD3 ablation row over synthesis seeds, from the
``table.json`` files of ``tools/mgd3_table.py --seeds``:

    python tools/mgd3_plot.py work_dirs/mgd3_table_seeds/ipc10/table.json \
        work_dirs/mgd3_table_seeds/ipc50/table.json \
        --titles "IPC 10" "IPC 50" --out docs/mgd3_seeds.png

Several files per panel are merged with ``+`` (``a.json+b.json``), e.g. a
table run in two parts.
"""
import argparse
import json
import os

from mmdistill.apis import cli_main
from mmdistill.utils import UserError


def load_tables(spec):
    table = {}
    for path in spec.split('+'):
        if not os.path.isfile(path):
            raise UserError(f'{path} not found (run tools/mgd3_table.py '
                            '--seeds first)')
        with open(path) as f:
            table.update(json.load(f))
    return table


@cli_main
def main():
    from mmdistill.synthesis.visualize import plot_seed_tables
    p = argparse.ArgumentParser(description='MGD3 accuracy per row and '
                                'synthesis seed')
    p.add_argument('tables', nargs='+', help='table.json files (one panel '
                   'each; join files of one panel with +)')
    p.add_argument('--titles', nargs='+', help='panel titles')
    p.add_argument('--metric', default='ConvNet')
    p.add_argument('--out', required=True, help='PNG to write')
    p.add_argument('--debug', action='store_true',
                   help='show the full traceback on errors')
    args = p.parse_args()
    titles = args.titles or args.tables
    if len(titles) != len(args.tables):
        raise UserError(f'{len(args.tables)} tables but {len(titles)} '
                        'titles')
    plot_seed_tables([load_tables(t) for t in args.tables], titles,
                     args.out, args.metric)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
