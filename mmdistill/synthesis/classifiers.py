"""Small classifiers for the dataset-distillation evaluation protocol,
trained from scratch on a (synthetic) data set."""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmdistill.registry import SYNTHESIS


@SYNTHESIS.register_module()
class ConvNet(nn.Module):
    """ConvNet-D of the dataset-distillation literature: ``depth`` blocks of
    conv3x3 (``width``) -> instance norm -> ReLU -> 2x2 average pooling
    (pooling skipped once the map is 1x1), then a linear layer.

    Args:
        in_channels (int): image channels.
        num_classes (int): classes.
        image_size (int): input side length.
        width (int): channels of every conv.
        depth (int): number of blocks.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 image_size: int,
                 width: int = 64,
                 depth: int = 3) -> None:
        super().__init__()
        layers, c, s = [], in_channels, image_size
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1),
                       nn.GroupNorm(width, width, affine=True),
                       nn.ReLU(inplace=True)]
            if s > 1:
                layers.append(nn.AvgPool2d(2))
                s //= 2
            c = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width * s * s, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class _BasicBlock(nn.Module):
    """out = relu(bn(conv(relu(bn(conv(pool(x)))))) + shortcut(x)),
    down-sampling by 2x2 average pooling (the "AP" of ResNetAP)."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2) if down else nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if cin == cout and not down else \
            nn.Sequential(nn.AvgPool2d(2) if down else nn.Identity(),
                          nn.Conv2d(cin, cout, 1, bias=False),
                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(self.pool(x))))
        return F.relu(self.bn2(self.conv2(h)) + self.short(x))


@SYNTHESIS.register_module()
class ResNetAP(nn.Module):
    """A small ResNet with average-pooling down-sampling (ResNetAP style):
    stem conv3x3 -> stages of basic blocks (each later stage halves the
    resolution while it is > 1) -> global average pool -> linear.

    Args:
        in_channels (int): image channels.
        num_classes (int): classes.
        image_size (int): input side length.
        widths (tuple[int]): channels per stage.
        blocks (tuple[int]): basic blocks per stage.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 image_size: int,
                 widths: Sequence[int] = (32, 64),
                 blocks: Sequence[int] = (1, 1)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, c, s = [], widths[0], image_size
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                down = i > 0 and b == 0 and s > 1
                s = s // 2 if down else s
                layers.append(_BasicBlock(c, w, down))
                c = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers(self.stem(x))
        return self.fc(h.mean((2, 3)))
