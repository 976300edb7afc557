"""The latent-space digits pipeline, end to end (CPU):

    VAE (AutoencoderKL on digits upsampled to 16x16, 4x4x4 latents)
    -> latent cache -> CFG teacher on the latents -> stage 1 (w-conditioned
    student) -> stage 2 (progressive distillation 32 -> 1 steps)
    -> evaluation report (decoded samples, digits classifier at 8x8)

    python tools/latent_digits.py --work-dir work_dirs/latent_digits

The three diffusion stages are ordinary runner runs of the configs in
``configs/latent_digits/`` (the VAE folder and the cache are set to the work
dir); a finished stage is reused when the script is run again. Writes
``report.md`` / ``report.json``, ``samples.png``, ``fid_vs_nfe.png``,
``vae_stats.json`` and ``timings.json`` into the work dir.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmdistill.apis import cli_main  # noqa: E402
from mmdistill.utils import UserError  # noqa: E402
from projects.digits.stages import run_stage  # noqa: E402

CFG_DIR = 'configs/latent_digits'
TEACHER_CFG = f'{CFG_DIR}/cfg_unet_latent_digits.py'
STAGE1_CFG = f'{CFG_DIR}/guided_distill_latent_digits.py'
STAGE2_CFG = f'{CFG_DIR}/progressive_latent_digits_32to1.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='mmdistill latent digits run')
    p.add_argument('--work-dir', default='work_dirs/latent_digits')
    p.add_argument('--vae-iters', type=int, default=None)
    p.add_argument('--teacher-iters', type=int, default=None)
    p.add_argument('--stage1-iters', type=int, default=None)
    p.add_argument('--iters-per-halving', type=int, default=None)
    p.add_argument('--n-start', type=int, default=None,
                   help='student steps of the first halving (a power of 2)')
    p.add_argument('--num-samples', type=int, default=1000,
                   help='generated samples per row of the report')
    p.add_argument('--teacher-steps', type=int, default=256,
                   help='DDIM steps of the reference teacher')
    p.add_argument('--no-pictures', action='store_true')
    p.add_argument('--quick', action='store_true',
                   help='a smoke run: tiny iteration counts and samples')
    p.add_argument('--debug', action='store_true')
    return p.parse_args(argv)


def settings(args):
    """Iteration counts and sizes of a full or a ``--quick`` run."""
    q = args.quick

    def pick(value, quick, full):
        return value if value is not None else (quick if q else full)

    s = dict(vae_iters=pick(args.vae_iters, 2, 1000),
             teacher_iters=pick(args.teacher_iters, 6, 2000),
             stage1_iters=pick(args.stage1_iters, 4, 1000),
             per_half=pick(args.iters_per_halving, 2, 300),
             n_start=pick(args.n_start, 8, 32),
             n_eval=20 if q else args.num_samples,
             ref_steps=8 if q else args.teacher_steps,
             teacher_steps=(1, 2) if q else (1, 2, 4, 8, 16),
             width=8 if q else 32,
             vae_channels=(8, 8, 8) if q else (16, 32, 32))
    for k in ('vae_iters', 'teacher_iters', 'stage1_iters', 'per_half',
              'n_eval', 'ref_steps'):
        if s[k] < 1:
            raise UserError(f'{k.replace("_", "-")} must be positive, got '
                            f'{s[k]}')
    if s['n_eval'] < 10:
        raise UserError(f'--num-samples must be at least 10 (the Inception '
                        f'Score uses 10 splits), got {s["n_eval"]}')
    n = s['n_start']
    if n < 8 or n & (n - 1):
        raise UserError(f'--n-start must be a power of two >= 8 (the report '
                        f'needs the 8, 4, 2 and 1-step students), got {n}')
    return s


def lr_schedule(iters, warmup=None):
    """The param_scheduler of a run of ``iters`` iterations: linear decay
    to 0, after a linear warm-up of ``warmup`` iterations if given."""
    if warmup is None:
        return [dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
                     by_epoch=False, begin=0, end=iters)]
    return [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
                 end=warmup),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup,
                 end=iters, eta_min=1e-5)]


def make_vae_and_cache(wd, vae_iters, vae_channels, timings):
    """Train and save the VAE (``wd/vae/vae``) and write the latent cache
    of the training digits (``wd/latent_cache``); both reused if present."""
    from mmdistill import register_all_modules
    register_all_modules()
    from mmdistill.datasets import DigitsDataset, write_latent_cache
    from mmdistill.datasets.latent_cache import MANIFEST
    from mmdistill.models.adapters import VAEWrapper
    from projects.digits.vae import train_digits_vae
    vae_dir, cache_dir = osp.join(wd, 'vae'), osp.join(wd, 'latent_cache')
    stats_file = osp.join(wd, 'vae_stats.json')
    if osp.isfile(stats_file) and osp.isfile(osp.join(vae_dir, 'vae',
                                                      'config.json')):
        print(f'[latent] vae: reusing {vae_dir}', flush=True)
    else:
        print(f'[latent] vae: {vae_iters} iterations -> {vae_dir}',
              flush=True)
        stats = train_digits_vae(
            vae_dir, iters=vae_iters, block_out_channels=vae_channels,
            log=lambda msg: print(msg, flush=True))
        timings['vae'] = stats['seconds']
        with open(stats_file, 'w') as f:
            json.dump(stats, f, indent=1)
        if osp.isdir(cache_dir) and osp.isfile(osp.join(cache_dir,
                                                        MANIFEST)):
            os.unlink(osp.join(cache_dir, MANIFEST))  # a new VAE
    if not osp.isfile(osp.join(cache_dir, MANIFEST)):
        vae = VAEWrapper.from_pretrained(vae_dir)
        size = vae.vae.config.sample_size
        m = write_latent_cache(DigitsDataset('train', image_size=size), vae,
                               cache_dir, batch_size=500,
                               source=dict(data='digits train',
                                           image_size=size))
        print(f'[latent] cache: {m["num_samples"]} latents '
              f'{m["latent_shape"]}', flush=True)
    return vae_dir, cache_dir


def run(argv=None):
    """The whole pipeline; ``argv`` as on the command line."""
    args = parse_args(argv)
    s = settings(args)
    wd = osp.abspath(args.work_dir)
    os.makedirs(wd, exist_ok=True)
    timings = {}
    vae_dir, cache_dir = make_vae_and_cache(wd, s['vae_iters'],
                                            s['vae_channels'], timings)
    pre = dict(type='LatentDataPreprocessor', vae=vae_dir,
               encode_inputs=False)
    common = {'train_dataloader.dataset.cache_dir': cache_dir,
              'default_hooks.logger.interval': 100}

    t_iters, t_dir = s['teacher_iters'], osp.join(wd, 'teacher')
    t_ckpt = osp.join(t_dir, f'iter_{t_iters}.pth')
    warmup = max(1, min(100, t_iters // 10))
    run_stage('teacher', TEACHER_CFG, t_dir, t_ckpt, {
        **common, 'model.data_preprocessor': pre,
        'model.denoiser.base_channels': s['width'],
        'train_cfg.max_iters': t_iters,
        'default_hooks.checkpoint.interval': t_iters,
        'param_scheduler': lr_schedule(t_iters, warmup)},
        prefix='latent', timings=timings)

    s1_iters, s1_dir = s['stage1_iters'], osp.join(wd, 'stage1')
    s1_ckpt = osp.join(s1_dir, f'iter_{s1_iters}.pth')
    run_stage('stage1', STAGE1_CFG, s1_dir, s1_ckpt, {
        **common, 'model.data_preprocessor': pre,
        'model.teacher.data_preprocessor': pre,
        'model.teacher.denoiser.base_channels': s['width'],
        'model.teacher_ckpt': t_ckpt, 'train_cfg.max_iters': s1_iters,
        'default_hooks.checkpoint.interval': s1_iters,
        'param_scheduler': lr_schedule(s1_iters)},
        prefix='latent', timings=timings)

    per_half, n = s['per_half'], s['n_start']
    halvings = n.bit_length()  # n, n/2, ..., 1
    s2_dir = osp.join(wd, 'progressive')
    run_stage('progressive', STAGE2_CFG, s2_dir,
              osp.join(s2_dir, 'student_1step.pth'), {
                  **common, 'model.data_preprocessor': pre,
                  'model.student.base_channels': s['width'],
                  'model.teacher_ckpt': s1_ckpt, 'model.num_steps': n,
                  'train_cfg.max_iters': halvings * per_half,
                  'default_hooks.checkpoint.interval': halvings * per_half,
                  'param_scheduler': lr_schedule(per_half),
                  'custom_hooks': [
                      dict(type='PortableCheckpointHook'),
                      dict(type='ProgressiveDistillationHook', n_end=1,
                           iters_per_stage=per_half)]},
              prefix='latent', timings=timings)

    from projects.digits.latent_report import evaluate_latent_digits
    t0 = time.time()
    evaluate_latent_digits(
        wd, osp.join(t_dir, osp.basename(TEACHER_CFG)), t_ckpt, s2_dir,
        n_eval=s['n_eval'], ref_steps=s['ref_steps'],
        teacher_steps=s['teacher_steps'], timings=timings,
        pictures=not args.no_pictures)
    timings['evaluation'] = time.time() - t0
    with open(osp.join(wd, 'timings.json'), 'w') as f:
        json.dump(timings, f, indent=1)
    print(f'[latent] report: {osp.join(wd, "report.md")}')


@cli_main
def main():
    run()


if __name__ == '__main__':
    main()
