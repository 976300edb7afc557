"""Latent-space (VAE) diffusion and diffusers-format teachers: the VAE
wrapper, the latent data preprocessor, the diffusers CFG teachers, the
caption data set, the latent cache and the export pipeline."""
from .cache import LatentCacheDataset, write_latent_cache
from .datasets import CaptionImageDataset
from .preprocessor import LatentDataPreprocessor, VAEWrapper
from .teachers import DiffusersCFGDiffusion, TextCFGDiffusion

__all__ = [
    'CaptionImageDataset', 'DiffusersCFGDiffusion', 'LatentCacheDataset',
    'LatentDataPreprocessor', 'TextCFGDiffusion', 'VAEWrapper',
    'write_latent_cache'
]
