"""A small CNN image classifier: the feature extractor for digits metrics.

Its penultimate activations serve Frechet distances, its softmax the
Inception Score and the accuracy of generated samples.
"""
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmdistill.registry import MODELS
from ..cfg_diffusion import build_preprocessor


@MODELS.register_module()
class DigitsCNN(nn.Module):
    """Three 3x3 conv layers, a global 2x2 pool and a two-layer head.

    ``features(x)`` (B, feat_dim) are the post-ReLU activations before the
    last linear layer; ``forward(x)`` returns class logits (B, num_classes).

    Args:
        in_channels (int): image channels.
        num_classes (int): number of classes.
        width (int): channels of the first conv layer (doubled after).
        feat_dim (int): dimension of the penultimate features.
        dropout (float): dropout before the last layer (training only).
    """

    def __init__(self,
                 in_channels: int = 1,
                 num_classes: int = 10,
                 width: int = 32,
                 feat_dim: int = 128,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.num_classes, self.feat_dim = num_classes, feat_dim
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * width, feat_dim), nn.ReLU())
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(feat_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feat_dim) of images x in [-1, 1]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.drop(self.features(x)))


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Trains ``net`` with cross-entropy on the
    ``DiffusionDataPreprocessor`` batch ``dict(inputs, data_samples=labels)``:

        L = -1/B sum_i log softmax(net(x_i))[y_i]

    Args:
        net (dict): classifier network config (e.g. ``DigitsCNN``).
        label_smoothing (float): cross-entropy label smoothing.
        data_preprocessor (dict): batch preprocessor config.
    """

    def __init__(self,
                 net: dict,
                 label_smoothing: float = 0.0,
                 data_preprocessor: Union[dict, nn.Module] = dict(
                     type='DiffusionDataPreprocessor'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        self.net = MODELS.build(net)
        self.label_smoothing = label_smoothing

    def forward(
        self,
        inputs: torch.Tensor,
        data_samples: Optional[torch.Tensor] = None,
        mode: str = 'tensor'
    ) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """'loss': dict(loss, acc); 'predict': predicted labels (B,);
        'tensor': logits."""
        logits = self.net(inputs)
        if mode == 'loss':
            loss = F.cross_entropy(logits, data_samples,
                                   label_smoothing=self.label_smoothing)
            acc = (logits.argmax(1) == data_samples).float().mean()
            return dict(loss=loss, acc=acc.detach())
        if mode == 'predict':
            return logits.argmax(1)
        if mode == 'tensor':
            return logits
        raise ValueError(f'invalid mode {mode!r}')

    @torch.no_grad()
    def accuracy(self, inputs: torch.Tensor,
                 labels: torch.Tensor) -> float:
        """Fraction of ``inputs`` classified as ``labels``."""
        self.eval()
        return float((self.net(inputs).argmax(1) == labels).float().mean())
