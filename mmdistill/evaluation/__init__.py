"""Feature extractors, FID / IS / accuracy metrics and the generative
evaluation machinery."""
from .api import evaluate_generator
from .extractors import (ClassifierFeatureExtractor, InceptionFeatureExtractor,
                         build_extractor)
from .functional import (accuracy, feature_statistics, fid_from_features,
                         frechet_distance, inception_score)
from .metrics import FID, IS, SampleAccuracy

__all__ = [
    'ClassifierFeatureExtractor', 'FID', 'IS', 'InceptionFeatureExtractor',
    'SampleAccuracy', 'accuracy', 'build_extractor', 'evaluate_generator',
    'feature_statistics', 'fid_from_features', 'frechet_distance',
    'inception_score'
]
