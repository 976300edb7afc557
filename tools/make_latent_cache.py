"""Write a latent cache for a config's training data:

    python tools/make_latent_cache.py CONFIG --out DIR \\
        [--batch-size 64] [--cfg-options ...]

Encodes ``train_dataloader.dataset`` with ``model.data_preprocessor``'s VAE
(and text encoder); see :mod:`mmdistill.datasets.latent_cache`.
"""
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmdistill.datasets.latent_cache import write_latent_cache  # noqa: E402
from mmdistill.registry import DATASETS  # noqa: E402


def main():
    """``python tools/make_latent_cache.py CONFIG --out DIR``:
    encode the config's ``train_dataloader.dataset`` with its
    ``model.data_preprocessor`` VAE (and text encoder) into a cache."""
    import argparse

    from mmdistill.apis import add_common_args, cli_main, load_config

    @cli_main
    def run():
        from mmdistill import register_all_modules
        register_all_modules()
        p = argparse.ArgumentParser(description=main.__doc__)
        p.add_argument('config')
        p.add_argument('--out', required=True, help='cache folder')
        p.add_argument('--batch-size', type=int, default=64)
        add_common_args(p)
        args = p.parse_args()
        cfg = load_config(args.config, args.cfg_options)
        from mmdistill.registry import MODELS
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        pre = MODELS.build(cfg.model.data_preprocessor)
        dev = 'cuda' if torch.cuda.is_available() else 'cpu'
        pre.to(dev)
        m = write_latent_cache(dataset, pre.vae, args.out, args.batch_size,
                               pre.text_encoder,
                               source=dict(config=args.config))
        print(f'wrote {m["num_samples"]} latents {m["latent_shape"]} to '
              f'{args.out}')

    run()


if __name__ == '__main__':
    main()
