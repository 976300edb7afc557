"""FLOPs and parameters of one network evaluation of a config's denoiser
at its image shape (what a sampler pays per step and image; a CFG teacher
pays two evaluations per guided step):

    python tools/analysis_tools/get_flops.py configs/teacher/cfg_unet_digits.py
    python tools/analysis_tools/get_flops.py CONFIG --batch 4 --shape 3 64 64

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (a
multiply-add is 2 FLOPs; matrix products and convolutions, not element-wise
operations) on the CPU with random weights.
"""
import argparse

from mmdistill.apis import add_common_args, cli_main, load_config
from mmdistill.utils import UserError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='FLOPs of one network '
                                'evaluation')
    p.add_argument('config', help='a model config (teacher or distiller)')
    p.add_argument('--batch', type=int, default=1,
                   help='images per evaluation (FLOPs are also given per '
                   'image)')
    p.add_argument('--shape', type=int, nargs='+', default=None,
                   metavar='N', help="input C H W (default: the model's "
                   'image_shape)')
    add_common_args(p)
    return p.parse_args(argv)


def count_flops(fn, *args, **kwargs):
    """Total FLOPs of ``fn(*args, **kwargs)`` and the count per operator
    (dict name -> FLOPs), under ``torch.no_grad``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn(*args, **kwargs)
    per_op = {str(k): int(v) for k, v in
              counter.get_flop_counts().get('Global', {}).items()}
    return int(counter.get_total_flops()), per_op


def count_params(module):
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def human(n):
    """12345678 -> '12.35 M'."""
    for unit, scale in (('G', 1e9), ('M', 1e6), ('k', 1e3)):
        if abs(n) >= scale:
            return f'{n / scale:.2f} {unit}'
    return str(n)


def network_evaluation(model, batch, shape):
    """``(net, call)``: the network of ``model`` that a sampling step runs
    and a function evaluating it once on a batch of noise (w = 0: the
    guidance-conditioned students still take w as an input)."""
    import torch
    net = model.pick_net('orig') if hasattr(model, 'pick_net') else \
        model.net
    z = torch.randn((batch, ) + tuple(shape))
    t = torch.full((batch, ), 0.5)
    labels = torch.zeros(batch, dtype=torch.long)
    x_fn = model.guided_x_fn(labels, torch.zeros(batch), 'orig')
    return net, lambda: x_fn(z, t)


@cli_main
def main():
    args = parse_args()
    if args.batch < 1:
        raise UserError(f'--batch must be >= 1, got {args.batch}')
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('model') is None:
        raise UserError(f'{args.config} has no model')
    # the teacher's weights are not needed to count
    for key in ('teacher_ckpt', 'uncond_teacher_ckpt'):
        if key in cfg.model:
            cfg.model[key] = None
    from mmdistill.apis import init_model
    model = init_model(cfg)
    shape = tuple(args.shape) if args.shape else tuple(model.image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f'--shape takes C H W, got {list(shape)}')
    net, call = network_evaluation(model, args.batch, shape)
    try:
        flops, per_op = count_flops(call)
    except Exception as e:  # noqa: BLE001
        raise UserError(f'cannot evaluate the network of {args.config} on '
                        f'input {list(shape)}: {type(e).__name__}: '
                        f'{str(e).splitlines()[0] if str(e) else ""}') from e
    params = count_params(net)
    print(f'config:  {args.config}')
    print(f'network: {type(net).__name__}, input {[args.batch, *shape]}')
    print(f'FLOPs:   {human(flops)} per evaluation of {args.batch} '
          f'image(s) ({human(flops // args.batch)} per image, '
          f'{flops} in total)')
    print(f'params:  {human(params)} ({params})')
    for name, n in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f'  {name}: {human(n)}')


if __name__ == '__main__':
    main()
