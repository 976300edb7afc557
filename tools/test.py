"""Evaluate a trained model with the config's test evaluator (FID / IS /
sample accuracy) and write the results as JSON and a markdown table.

    python tools/test.py configs/teacher/cfg_unet_digits_eval.py CKPT
    python tools/test.py CONFIG CKPT --out results/teacher.json
    bash tools/dist_test.sh CONFIG CKPT 2
"""
import argparse
import json
import os
import os.path as osp
import time

from mmdistill.apis import (add_common_args, add_launcher_args,
                            check_output_folder, cli_main, load_config,
                            set_local_rank)
from mmdistill.utils import UserError


def parse_args():
    p = argparse.ArgumentParser(description='Evaluate a generative model')
    p.add_argument('config', help='config with test_dataloader, '
                   'test_evaluator and test_cfg')
    p.add_argument('checkpoint', help='weights (a tools/train.py checkpoint '
                   'or a bare state dict / .safetensors)')
    p.add_argument('--work-dir', help='where results are written')
    p.add_argument('--out', help='also write the results (metrics, config, '
                   'checkpoint, timing) to this JSON file (atomically)')
    add_launcher_args(p)
    add_common_args(p)
    return set_local_rank(p.parse_args())


def markdown_table(results, title):
    lines = [f'## {title}', '', '| metric | value |', '| --- | ---: |']
    lines += [f'| {k} | {v:.4f} |' for k, v in results.items()]
    return '\n'.join(lines) + '\n'


@cli_main
def main():
    from mmdistill import register_all_modules
    register_all_modules()
    from mmengine.dist import get_dist_info

    from mmdistill.engine import DistillRunner
    from mmdistill.evaluation.generative import unwrap
    from mmdistill.utils import atomic_write, load_into, load_state_dict
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    for key in ('test_dataloader', 'test_evaluator', 'test_cfg'):
        if cfg.get(key) is None:
            raise UserError(f'{args.config} has no {key}; inherit '
                            "'../_base_/evaluation/digits_generation.py' "
                            'or define it')
    cfg.launcher = args.launcher
    cfg.load_from, cfg.resume = None, False
    # evaluation builds no optimizer or training data
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg.pop(key, None)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(
            osp.basename(args.config))[0])
    check_output_folder(cfg.work_dir, '--work-dir')
    if args.out is not None and (os.path.isdir(args.out) or
                                 args.out.endswith(os.sep)):
        raise UserError(f'--out {args.out} is a folder; give a file name, '
                        'e.g. results.json')
    state = load_state_dict(args.checkpoint)
    runner = DistillRunner.from_cfg(cfg)
    load_into(unwrap(runner.model), state, 'model', args.checkpoint)
    start = time.perf_counter()
    results = runner.test()
    seconds = time.perf_counter() - start
    rank, world = get_dist_info()
    if rank == 0:
        results = {k: float(v) for k, v in results.items()}
        out = dict(config=args.config, checkpoint=args.checkpoint,
                   processes=world, eval_seconds=round(seconds, 2),
                   metrics=results)
        js = osp.join(cfg.work_dir, 'test_results.json')
        md = osp.join(cfg.work_dir, 'test_results.md')
        text = json.dumps(out, indent=2) + '\n'
        for path in [js] + ([args.out] if args.out else []):
            atomic_write(path, lambda f: f.write(text), mode='w')
        atomic_write(md, lambda f: f.write(markdown_table(
            results, osp.basename(args.checkpoint))), mode='w')
        print(markdown_table(results, osp.basename(args.checkpoint)))
        also = f' and {args.out}' if args.out else ''
        print(f'evaluated in {seconds:.1f} s on {world} process(es); '
              f'results written to {js}, {md}{also}')


if __name__ == '__main__':
    main()
