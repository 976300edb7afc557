"""Pretrained diffusers models behind mmdistill's interfaces.

- :mod:`.networks`: ``UNet2DModel`` / ``DiTTransformer2DModel`` /
  ``UNet2DConditionModel`` as denoisers ``net(z, t, y, w=None)``;
- :mod:`.preprocessor`: the frozen VAE / text encoder and the latent data
  preprocessor;
- :mod:`.teachers`: CFG models whose network is an adapter;
- :mod:`.export` and :mod:`.pipeline`: a distilled student as a diffusers
  folder with a stand-alone sampler.
"""
from .networks import (PREDICTION_MAP, PREDICTION_MAP_INV, DiffusersDiT,
                       DiffusersTextUNet, DiffusersUNet2D, load_component,
                       parse_dtype)
from .preprocessor import (LatentDataPreprocessor, TextEncoderWrapper,
                           VAEWrapper)
from .teachers import DiffusersCFGDiffusion, TextCFGDiffusion

__all__ = [
    'DiffusersCFGDiffusion', 'DiffusersDiT', 'DiffusersTextUNet',
    'DiffusersUNet2D', 'LatentDataPreprocessor', 'PREDICTION_MAP',
    'PREDICTION_MAP_INV', 'TextCFGDiffusion', 'TextEncoderWrapper',
    'VAEWrapper', 'load_component', 'parse_dtype'
]
