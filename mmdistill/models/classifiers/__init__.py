"""Domain classifiers (the digits CNN: evaluation features and accuracy)."""
from .digits_cnn import DigitsCNN, ImageClassifier

__all__ = ['DigitsCNN', 'ImageClassifier']
