"""Write a latent cache for a config's training data:

    python -m mmdistill.models.latent.make_cache CONFIG --out DIR \\
        [--batch-size 64] [--cfg-options ...]

Encodes ``train_dataloader.dataset`` with ``model.data_preprocessor``'s VAE
(and text encoder); see :mod:`mmdistill.models.latent.cache`.
"""
import torch

from mmdistill.registry import DATASETS
from mmdistill.models.latent.cache import write_latent_cache


def main():
    """``python -m mmdistill.models.latent.make_cache CONFIG --out DIR``:
    encode the config's ``train_dataloader.dataset`` with its
    ``model.data_preprocessor`` VAE (and text encoder) into a cache."""
    import argparse

    from mmdistill.apis import add_common_args, cli_main, load_config

    @cli_main
    def run():
        import mmdistill  # noqa: F401
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
