"""Sample a trained model into a PNG grid, one row per class.

    python tools/sample.py CONFIG CKPT --steps 64 --guidance 2 --out grid.png

Guidance w follows Meng et al.: x_hat = (1 + w) x_c - w x_u (w = 0 is the
plain conditional model; diffusers' guidance_scale = 1 + w).
"""
import argparse

from mmdistill.apis import (add_common_args, check_finite_arg, cli_main,
                            load_config, load_for_sampling)
from mmdistill.utils import UserError


def parse_args():
    p = argparse.ArgumentParser(description='Sample a model to a PNG grid')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--steps', type=int, default=None,
                   help='sampler steps (default: the model\'s)')
    p.add_argument('--guidance', type=float, default=None,
                   help='guidance weight w, Meng convention')
    p.add_argument('--sampler', default=None,
                   choices=['ddim', 'ddpm', 'stochastic'])
    p.add_argument('--per-class', type=int, default=10)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--sample-model', default='ema', choices=['ema', 'orig'])
    p.add_argument('--upscale', type=int, default=4,
                   help='pixel repeat factor in the PNG (nearest)')
    p.add_argument('--cell', type=int, default=None,
                   help='draw each image at about this many pixels '
                   '(overrides --upscale)')
    p.add_argument('--tight', action='store_true',
                   help='no border around the grid')
    p.add_argument('--out', default='samples.png')
    p.add_argument('--device', default='cpu')
    add_common_args(p)
    return p.parse_args()


@cli_main
def main():
    import torch
    args = parse_args()
    if args.steps is not None and args.steps < 1:
        raise UserError(f'--steps must be >= 1, got {args.steps}')
    if args.upscale < 1 or (args.cell is not None and args.cell < 1):
        raise UserError('--upscale and --cell must be >= 1')
    if args.per_class < 1:
        raise UserError(f'--per-class must be >= 1, got {args.per_class}')
    check_finite_arg(args.guidance, '--guidance')
    cfg = load_config(args.config, args.cfg_options)
    model = load_for_sampling(cfg, args.checkpoint, args.device)
    k = model.num_classes
    labels = torch.arange(k).repeat_interleave(args.per_class)
    g = torch.Generator().manual_seed(args.seed)
    noise = torch.randn((len(labels), ) + tuple(model.image_shape),
                        generator=g)
    images = model.sample(labels, noise=noise, steps=args.steps,
                          guidance=args.guidance, sampler=args.sampler,
                          generator=g, sample_model=args.sample_model)
    from mmdistill.utils.image import save_grid
    save_grid(images, args.out, nrow=args.per_class, upscale=args.upscale,
              tight=args.tight, cell=args.cell)
    print(f'wrote {args.out} ({k} classes x {args.per_class})')


if __name__ == '__main__':
    main()
