from .guided_l2 import GuidedOutputL2Loss

__all__ = ['GuidedOutputL2Loss']
