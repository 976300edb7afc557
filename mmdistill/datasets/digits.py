"""scikit-learn's handwritten digits: 1797 real 8x8 grey images, 10 classes,
shipped inside the scikit-learn wheel (no download)."""
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mmdistill.registry import DATASETS

SPLITS = ('train', 'test', 'all')


def load_digits_split(split: str = 'train',
                      test_size: int = 360,
                      seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A fixed stratified split of ``sklearn.datasets.load_digits``.

    Returns (images float32 (N, 1, 8, 8) in [-1, 1], labels int64 (N,)).
    The default keeps 360 test images (20%), 1437 for training.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0) * 2 - 1
    y = d.target.astype(np.int64)
    if split == 'all':
        return x[:, None], y
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, stratify=y,
                              random_state=seed)
    sel = np.sort(tr if split == 'train' else te)
    return x[sel][:, None], y[sel]


@DATASETS.register_module()
class DigitsDataset(Dataset):
    """Digits as a diffusion/classification data set.

    Items are ``dict(inputs=Tensor (1, S, S) in [-1, 1], data_samples=label)``.

    Args:
        split (str): 'train' (1437 images), 'test' (360) or 'all' (1797).
        image_size (int): resize (bilinear) from 8 to this size if not 8.
        test_size (int): size of the stratified test split.
        seed (int): split seed (fixed: the split is part of the benchmark).
    """

    METAINFO = dict(classes=tuple(str(i) for i in range(10)))

    def __init__(self,
                 split: str = 'train',
                 image_size: int = 8,
                 test_size: int = 360,
                 seed: int = 0) -> None:
        x, y = load_digits_split(split, test_size, seed)
        x = torch.from_numpy(x)
        if image_size != x.shape[-1]:
            x = F.interpolate(x, size=(image_size, image_size),
                              mode='bilinear', align_corners=False)
        self.images, self.labels = x.clamp(-1, 1), torch.from_numpy(y)
        self.metainfo = dict(self.METAINFO)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.images[i], data_samples=int(self.labels[i]))
