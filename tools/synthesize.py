"""Synthesise a data set with MGD3 (mode discovery + mode guidance + stop
guidance) and optionally evaluate it.

    python tools/synthesize.py configs/mgd3/mgd3_digits_ipc10.py
    python tools/synthesize.py CONFIG --out-dir D          # another folder
    python tools/synthesize.py CONFIG --resume             # continue the
                                                           # run in out_dir
    python tools/synthesize.py CONFIG --overwrite          # replace it
    python tools/synthesize.py CONFIG --evaluate           # + accuracy,
                                                           # diversity
    python tools/synthesize.py CONFIG --eval-only          # evaluate only
    python tools/synthesize.py CONFIG --eval-only --plot docs/mgd3_modes.png

An interrupted run continues where it stopped when started again with the
same config (finished images are kept and not regenerated).
"""
import argparse
import json
import os
import time

from mmdistill.apis import (add_common_args, check_output_folder, cli_main,
                            load_config)
from mmdistill.utils import UserError, atomic_write


def parse_args():
    p = argparse.ArgumentParser(description='MGD3 dataset synthesis')
    p.add_argument('config', help='synthesis config (configs/mgd3/...)')
    p.add_argument('--out-dir', help='output folder (default: out_dir of '
                   'the config)')
    p.add_argument('--resume', action='store_true',
                   help='continue the run already in the output folder, '
                   'even if its settings differ from the config')
    p.add_argument('--overwrite', action='store_true',
                   help='delete a different run in the output folder first')
    p.add_argument('--evaluate', action='store_true',
                   help='after synthesis, train classifiers on the data set '
                   'and test them on the real test split')
    p.add_argument('--eval-only', action='store_true',
                   help='evaluate an existing synthetic data set')
    p.add_argument('--plot', metavar='PNG',
                   help='save a picture of the modes, the samples and a PCA '
                   'projection (pixel-space runs)')
    p.add_argument('--no-progress', action='store_true',
                   help='hide the progress bar')
    add_common_args(p)
    return p.parse_args()


@cli_main
def main():
    from mmdistill import register_all_modules
    register_all_modules()
    from mmdistill.synthesis.evaluate import evaluate_dataset
    from mmdistill.synthesis.pipeline import Synthesizer, to_plain
    args = parse_args()
    if args.resume and args.overwrite:
        raise UserError('--resume and --overwrite exclude each other')
    cfg = load_config(args.config, args.cfg_options)
    out_dir = args.out_dir or cfg.get('out_dir')
    if not out_dir:
        raise UserError('no output folder: pass --out-dir or set out_dir in '
                        'the config')
    check_output_folder(out_dir, '--out-dir')
    real_cfg = to_plain(cfg.get('real_data'))
    if not args.eval_only:
        t0 = time.time()
        syn = Synthesizer(cfg, out_dir, resume=args.resume,
                          overwrite=args.overwrite,
                          progress=not args.no_progress)
        man = syn.run()
        real_cfg = man['settings']['real_data']
        print(f"wrote {man['total']} images to {out_dir} in "
              f'{time.time() - t0:.1f} s (fingerprint {man["fingerprint"]})')
    if args.plot:
        from mmdistill.registry import SYNTHESIS
        from mmdistill.synthesis.visualize import plot_modes

        # the synthesis run's generator; --eval-only builds one
        gen = syn._gen() if not args.eval_only else SYNTHESIS.build(
            to_plain(cfg.generator))
        decode = gen.decode if gen.latent else None  # latent modes: decode
        print(f'picture: {plot_modes(out_dir, args.plot, real_cfg, decode)}')
    if args.evaluate or args.eval_only:
        if 'evaluation' not in cfg:
            raise UserError('the config has no evaluation section')
        res = evaluate_dataset(out_dir, to_plain(cfg.evaluation), real_cfg)
        atomic_write(os.path.join(out_dir, 'eval.json'),
                     lambda f: f.write(json.dumps(res, indent=1).encode()))


if __name__ == '__main__':
    main()
