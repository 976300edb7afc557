from .feature_matching import FeatureMatchingLoss
from .guided_l2 import GuidedOutputL2Loss

__all__ = ['FeatureMatchingLoss', 'GuidedOutputL2Loss']
