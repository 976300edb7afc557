"""Models: the CFG diffusion model, denoisers (own and diffusers adapters),
distillers, losses and classifiers."""
from . import adapters, classifiers, distillers, losses  # noqa: F401
from .cfg_diffusion import CFGDiffusion, EMAMixin
from .data_preprocessor import DiffusionDataPreprocessor
from .denoisers import CompactUNet
from .losses import GuidedOutputL2Loss
from .sampling import GuidedSamplingMixin
from .wrappers import DistillDataParallel, DistillFSDP

__all__ = [
    'CFGDiffusion', 'CompactUNet', 'DiffusionDataPreprocessor',
    'DistillDataParallel', 'DistillFSDP', 'EMAMixin', 'GuidedOutputL2Loss',
    'GuidedSamplingMixin'
]
