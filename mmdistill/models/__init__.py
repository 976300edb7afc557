from . import classifiers, distillers  # noqa: F401  (register)
from .cfg_diffusion import CFGDiffusion, EMAMixin
from .data_preprocessor import DiffusionDataPreprocessor
from .denoisers import CompactUNet
from .losses import GuidedOutputL2Loss
from .sampling import GuidedSamplingMixin
from .wrappers import DistillDataParallel

__all__ = [
    'CFGDiffusion', 'CompactUNet', 'DiffusionDataPreprocessor',
    'DistillDataParallel', 'EMAMixin', 'GuidedOutputL2Loss',
    'GuidedSamplingMixin'
]
