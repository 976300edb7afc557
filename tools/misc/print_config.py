"""Print a config with its ``_base_`` files and ``--cfg-options`` merged in,
as it reaches tools/train.py and tools/test.py:

    python tools/misc/print_config.py configs/teacher/cfg_unet_digits.py
    python tools/misc/print_config.py CONFIG --cfg-options model.num_steps=8
    python tools/misc/print_config.py CONFIG --save-path merged.py
"""
import argparse

from mmdistill.apis import add_common_args, cli_main, load_config
from mmdistill.utils import UserError, atomic_write


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Print the merged config')
    p.add_argument('config', help='config file path')
    p.add_argument('--save-path', default=None,
                   help='also write the merged config to this .py file')
    add_common_args(p)
    return p.parse_args(argv)


@cli_main
def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    text = cfg.pretty_text
    print(f'Config: {args.config}\n{text}')
    if args.save_path is not None:
        if not args.save_path.endswith('.py'):
            raise UserError(f'--save-path {args.save_path} must end in .py '
                            '(a loadable config file)')
        atomic_write(args.save_path, lambda f: f.write(text), mode='w')
        print(f'written to {args.save_path}')


if __name__ == '__main__':
    main()
