"""Sub-modules are imported automatically so their components register."""
from mmdistill.utils.autoimport import import_submodules

import_submodules(__name__, __path__)

from .api import evaluate_generator  # noqa: E402
from .extractors import build_extractor  # noqa: E402
from .functional import (accuracy, feature_statistics,  # noqa: E402
                         fid_from_features, frechet_distance,
                         inception_score)

__all__ = [
    'accuracy', 'build_extractor', 'evaluate_generator',
    'feature_statistics', 'fid_from_features', 'frechet_distance',
    'inception_score'
]
