"""MGD3 dataset synthesis: mode discovery, mode-guided sampling with stop
guidance, the synthesis pipeline and the evaluation protocol."""
from .classifiers import ConvNet, ResNetAP
from .generators import (CFGModelGenerator, DistilledStudentGenerator,
                         DiTLatentGenerator, PixelTeacherGenerator)
from .holdout import StratifiedHoldout
from .modes import GMMModes, KMeansModes
from .pipeline import Synthesizer

__all__ = [
    'CFGModelGenerator', 'ConvNet', 'DiTLatentGenerator',
    'DistilledStudentGenerator', 'GMMModes',
    'KMeansModes', 'PixelTeacherGenerator', 'ResNetAP', 'StratifiedHoldout',
    'Synthesizer'
]
