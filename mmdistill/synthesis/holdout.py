"""A held-out validation part of a labelled training set, for choosing
synthesis hyper-parameters without looking at the test split.

``StratifiedHoldout`` wraps a registered data set (e.g. the digits training
split) and keeps one of two disjoint parts of a deterministic stratified
split of it:

- ``part='fit'``: what selection may use for everything except scoring
  (mode discovery, real baselines, representativeness);
- ``part='val'``: the images the selection scores classifiers on.

The split is a function of (labels, fraction, seed) only: the same for every
run and every machine. Config::

    dict(type='StratifiedHoldout', part='val', fraction=0.2, seed=0,
         dataset=dict(type='DigitsDataset', split='train'))
"""
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from mmdistill.registry import DATASETS
from mmdistill.utils import UserError

PARTS = ('fit', 'val')


def stratified_holdout(
        labels: Union[np.ndarray, torch.Tensor, Sequence[int]],
        fraction: float = 0.2,
        seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Split indices 0..N-1 into (fit, val), stratified by label.

    Per class c with n_c samples, round(fraction * n_c) samples (at least 1
    and at most n_c - 1) go to ``val``, drawn by a ``numpy`` generator
    seeded with ``seed``; both index arrays are sorted.

    Args:
        labels (array-like): (N,) integer labels.
        fraction (float): share of each class held out, in (0, 1).
        seed (int): seed of the draw.

    Returns:
        tuple[np.ndarray, np.ndarray]: (fit indices, val indices).
    """
    if not isinstance(fraction, (float, int)) or not 0 < fraction < 1:
        raise UserError(f'holdout fraction must be in (0, 1), got '
                        f'{fraction!r}; e.g. fraction=0.2')
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        if len(rows) < 2:
            raise UserError(f'class {c} has {len(rows)} sample(s): a '
                            'stratified holdout needs at least 2 per class')
        k = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        val.append(rng.choice(rows, k, replace=False))
    val = np.sort(np.concatenate(val))
    fit = np.setdiff1d(np.arange(len(labels)), val)
    return fit, val


@DATASETS.register_module()
class StratifiedHoldout(Dataset):
    """One part of a stratified split of a labelled data set.

    Args:
        dataset (dict | Dataset): the data set to split (its items are
            ``dict(inputs=..., data_samples=label)``).
        part (str): 'fit' or 'val'.
        fraction (float): share of each class in the 'val' part.
        seed (int): seed of the split.

    Attributes:
        indices (np.ndarray): the kept indices into ``dataset``.
        images, labels: stacked tensors of the kept part (when the wrapped
            data set has ``images`` and ``labels``, as ``DigitsDataset``).
    """

    def __init__(self,
                 dataset: Union[dict, Dataset],
                 part: str = 'val',
                 fraction: float = 0.2,
                 seed: int = 0) -> None:
        if part not in PARTS:
            raise UserError(f'StratifiedHoldout part must be one of {PARTS}, '
                            f'got {part!r}')
        base = DATASETS.build(dataset) if isinstance(dataset, dict) \
            else dataset
        if hasattr(base, 'labels'):
            labels = np.asarray(base.labels)
        else:
            labels = np.asarray([int(base[i]['data_samples'])
                                 for i in range(len(base))])
        fit, val = stratified_holdout(labels, fraction, seed)
        self.base, self.part = base, part
        self.indices = fit if part == 'fit' else val
        idx = torch.as_tensor(self.indices, dtype=torch.long)
        self.labels = torch.as_tensor(labels)[idx]
        if hasattr(base, 'images'):
            self.images = base.images[idx]
        self.metainfo = dict(getattr(base, 'metainfo', {}) or {})

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.base[int(self.indices[i])]
