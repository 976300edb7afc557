"""Build the latent DiT of digits from nothing (CPU), the recipe of the
shipped ``checkpoints/dit-digits``:

    VAE (AutoencoderKL on the digits upsampled to 16x16, 4x4x4 latents,
    1000 iterations) -> DiT teacher (configs/teacher/dit_latent_digits.py,
    8000 iterations) -> the DiT folder (tools/export.py --layout dit:
    model_index.json, transformer/, vae/, scheduler/)

    python tools/dit_digits.py --work-dir work_dirs/dit_digits

A finished step is reused when the command is run again. The folder is
written to ``WORK_DIR/dit-digits``; the configs read
``checkpoints/dit-digits`` (copy it there, or pass the folder with
``--cfg-options``).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmdistill.apis import cli_main  # noqa: E402
from mmdistill.utils import UserError  # noqa: E402
from projects.digits.stages import run_stage  # noqa: E402

TEACHER_CFG = 'configs/teacher/dit_latent_digits.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='train the latent DiT of digits')
    p.add_argument('--work-dir', default='work_dirs/dit_digits')
    p.add_argument('--vae-iters', type=int, default=1000)
    p.add_argument('--teacher-iters', type=int, default=8000)
    return p.parse_args(argv)


def run(argv=None):
    args = parse_args(argv)
    if args.vae_iters < 1 or args.teacher_iters < 1:
        raise UserError('--vae-iters and --teacher-iters must be positive')
    wd = osp.abspath(args.work_dir)
    os.makedirs(wd, exist_ok=True)
    vae_dir = osp.join(wd, 'vae')
    if osp.isfile(osp.join(vae_dir, 'vae', 'config.json')):
        print(f'[dit] vae: reusing {vae_dir}', flush=True)
    else:
        from projects.digits.vae import train_digits_vae
        print(f'[dit] vae: {args.vae_iters} iterations -> {vae_dir}',
              flush=True)
        stats = train_digits_vae(vae_dir, iters=args.vae_iters,
                                 block_out_channels=(16, 32, 32),
                                 log=lambda m: print(m, flush=True))
        with open(osp.join(wd, 'vae_stats.json'), 'w') as f:
            json.dump(stats, f, indent=1)
    n = args.teacher_iters
    t_dir = osp.join(wd, 'teacher')
    t_ckpt = osp.join(t_dir, f'iter_{n}.pth')
    run_stage('teacher', TEACHER_CFG, t_dir, t_ckpt, {
        'model.data_preprocessor.vae': vae_dir,
        'train_cfg.max_iters': n,
        'default_hooks.checkpoint.interval': n,
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False,
                 begin=0, end=min(200, n)),
            dict(type='CosineAnnealingLR', by_epoch=False,
                 begin=min(200, n), end=n, eta_min=1e-5)]}, prefix='dit')
    folder = osp.join(wd, 'dit-digits')
    if osp.isfile(osp.join(folder, 'model_index.json')):
        print(f'[dit] folder: reusing {folder}', flush=True)
        return folder
    cfg = osp.join(wd, 'configs', 'teacher', osp.basename(TEACHER_CFG))
    r = subprocess.run([sys.executable, osp.join(ROOT, 'tools/export.py'),
                        cfg, t_ckpt, folder, '--layout', 'dit'], cwd=ROOT)
    if r.returncode != 0:
        raise UserError(f'export of {t_ckpt} failed (exit {r.returncode})')
    print(f'[dit] folder: {folder}', flush=True)
    return folder


@cli_main
def main():
    run()


if __name__ == '__main__':
    main()
