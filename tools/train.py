"""Train a model from a config, as mmagic's tools/train.py does.

    python tools/train.py configs/teacher/cfg_unet_digits.py
    python tools/train.py CONFIG --resume            # latest in the work dir
    python tools/train.py CONFIG --resume PATH.pth   # a given checkpoint
    bash tools/dist_train.sh CONFIG 8 --auto-scale-lr   # lr x 8 x batch / base
"""
import argparse
import os.path as osp

from mmdistill.apis import (add_common_args, add_launcher_args,
                            check_output_folder, cli_main, load_config,
                            set_local_rank)
from mmdistill.utils import UserError


def parse_args():
    p = argparse.ArgumentParser(description='Train a model')
    p.add_argument('config', help='train config file path')
    p.add_argument('--work-dir', help='the dir to save logs and models')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from the latest checkpoint in the work dir, '
                   'or from the given checkpoint')
    p.add_argument('--amp', action='store_true',
                   help='automatic mixed precision (bf16 on GPUs)')
    p.add_argument('--auto-scale-lr', action='store_true',
                   help='scale the lr by (processes x batch size) / '
                   "the config's auto_scale_lr.base_batch_size")
    add_launcher_args(p)
    add_common_args(p)
    return set_local_rank(p.parse_args())


@cli_main
def main():
    from mmdistill import register_all_modules
    register_all_modules()
    from mmdistill.engine import DistillRunner
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    max_iters = cfg.get('train_cfg', {}).get('max_iters')
    if max_iters is not None and (not isinstance(max_iters, int)
                                  or max_iters < 1):
        raise UserError(f'train_cfg.max_iters must be a positive integer, '
                        f'got {max_iters!r}')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    check_output_folder(cfg.work_dir, '--work-dir')
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise UserError('--amp needs a CUDA GPU (bf16 autocast); drop '
                            '--amp on the CPU')
        safe = cfg.optim_wrapper.get('type') in (None, 'SafeOptimWrapper')
        cfg.optim_wrapper.type = ('SafeAmpOptimWrapper' if safe else
                                  'AmpOptimWrapper')
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or not scale.get('base_batch_size'):
            raise UserError(
                f'--auto-scale-lr needs auto_scale_lr = dict(enable=False, '
                f'base_batch_size=N) in {args.config} (N: the total batch '
                'its lr was set for); add it or drop --auto-scale-lr')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise UserError(f'checkpoint to resume not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    runner = DistillRunner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
