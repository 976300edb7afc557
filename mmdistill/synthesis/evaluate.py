"""The MGD3 evaluation protocol for a synthetic data set.

- Accuracy: a classifier is trained from scratch on the data set (SGD,
  momentum, weight decay, multi-step learning rate, random-shift
  augmentation) and tested (top-1) on the real test split; the accuracy
  after the FINAL epoch is reported (no selection on the test set), as
  mean and std over several seeds.
- Diversity (per synthetic sample s of class c): min_{s' != s in class c}
  d(s, s'); averaged over samples.
- Representativeness (per synthetic sample): mean distance to its 50
  nearest real training samples of the same class (lower = closer to the
  real data); averaged.

Distances are RMS distances d(a, b) = ||a - b||_2 / sqrt(D): on the images
in [-1, 1] at the evaluation resolution (``diversity``,
``representativeness``) and, if ``feature_extractor`` is set, also on the
features of that extractor (``diversity_feat``, ``representativeness_feat``;
the paper measures both in a feature space).
"""
import math
import os
from typing import Any, Callable, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from mmdistill.datasets.image_folder import load_image
from mmdistill.evaluation import build_extractor
from mmdistill.registry import DATASETS, SYNTHESIS
from mmdistill.utils import UserError
from .pipeline import ANNOTATIONS

DEFAULT_EVAL = dict(
    classifiers=[dict(type='ConvNet', width=32, depth=2)],
    seeds=(0, 1, 2), iterations=500, batch_size=64, lr=0.01, momentum=0.9,
    weight_decay=5e-4, milestones=(0.5, 0.75), shift=1, flip=False,
    image_size=None, channels=None, num_neighbours=50,
    feature_extractor=None)


def load_synthetic(folder: str, image_size: int,
                   channels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images and labels listed in ``folder/annotations.txt``."""
    ann = os.path.join(folder, ANNOTATIONS)
    if not os.path.isfile(ann):
        raise UserError(f'{ann} not found: {folder} is not a finished '
                        'synthetic data set (run tools/synthesize.py first)')
    xs, ys = [], []
    with open(ann) as f:
        for line in f:
            if line.strip():
                rel, lab = line.rsplit(maxsplit=1)
                xs.append(load_image(os.path.join(folder, rel), image_size,
                                     channels))
                ys.append(int(lab))
    return torch.stack(xs), torch.tensor(ys)


def dataset_tensors(cfg: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack a registered data set into (images, labels)."""
    ds = DATASETS.build(cfg)
    if hasattr(ds, 'images') and hasattr(ds, 'labels'):
        return ds.images.float(), torch.as_tensor(ds.labels).long()
    items = [ds[i] for i in range(len(ds))]
    return (torch.stack([it['inputs'] for it in items]),
            torch.tensor([int(it['data_samples']) for it in items]))


def _augment(x, shift, flip, g):
    if shift:
        b, _, h, w = x.shape
        xp = F.pad(x, (shift, ) * 4, mode='replicate')
        dy = torch.randint(0, 2 * shift + 1, (b, ), generator=g)
        dx = torch.randint(0, 2 * shift + 1, (b, ), generator=g)
        rows = (dy[:, None] + torch.arange(h))[:, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, :]
        x = xp.permute(0, 2, 3, 1)[torch.arange(b)[:, None, None], rows,
                                   cols].permute(0, 3, 1, 2)
    if flip:
        m = torch.rand(x.shape[0], generator=g) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(-1), x)
    return x


def train_and_test(net_cfg: dict,
                   x: torch.Tensor,
                   y: torch.Tensor,
                   x_test: torch.Tensor,
                   y_test: torch.Tensor,
                   num_classes: int,
                   seed: int,
                   iterations: int = 1000,
                   batch_size: int = 64,
                   lr: float = 0.01,
                   momentum: float = 0.9,
                   weight_decay: float = 5e-4,
                   milestones: Sequence[float] = (0.5, 0.75),
                   shift: int = 1,
                   flip: bool = False) -> float:
    """Train a fresh classifier on (x, y); return the final-epoch top-1
    accuracy (%) on (x_test, y_test).

    Epochs = ceil(iterations / batches per epoch); the learning rate drops
    by 10x at the given fractions of the epochs (MultiStepLR).
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = SYNTHESIS.build({**net_cfg, 'in_channels': x.shape[1],
                           'num_classes': num_classes,
                           'image_size': x.shape[-1]})
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    bs = min(batch_size, len(x))
    per_epoch = math.ceil(len(x) / bs)
    epochs = max(1, math.ceil(iterations / per_epoch))
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, [max(1, int(m * epochs)) for m in milestones], 0.1)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), bs):
            idx = perm[s:s + bs]
            xb = _augment(x[idx], shift, flip, g)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(c).argmax(1) for c in x_test.split(512)])
    return float((pred == y_test).float().mean() * 100)


def _rms_cdist(a, b):
    return torch.cdist(a.flatten(1).double(), b.flatten(1).double()) / \
        math.sqrt(a[0].numel())


@torch.no_grad()
def _features(ext, x, batch_size=512):
    return torch.cat([ext.extract(x[i:i + batch_size], probs=False)
                      ['features'].double().cpu()
                      for i in range(0, len(x), batch_size)])


def diversity_representativeness(x: torch.Tensor,
                                 y: torch.Tensor,
                                 x_real: torch.Tensor,
                                 y_real: torch.Tensor,
                                 k: int = 50) -> Tuple[float, float]:
    """(diversity, representativeness) averaged over synthetic samples;
    diversity is NaN when every class has a single sample."""
    div, rep = [], []
    for c in torch.unique(y):
        s, r = x[y == c], x_real[y_real == c]
        if len(s) > 1:
            d = _rms_cdist(s, s)
            d.fill_diagonal_(float('inf'))
            div.append(d.min(1).values)
        if len(r):
            dr = _rms_cdist(s, r)
            kk = min(k, dr.shape[1])
            rep.append(dr.topk(kk, dim=1, largest=False).values.mean(1))
    div = float(torch.cat(div).mean()) if div else float('nan')
    rep = float(torch.cat(rep).mean()) if rep else float('nan')
    return div, rep


def evaluate_dataset(folder: str,
                     eval_cfg: dict,
                     real_train_cfg: dict,
                     log: Callable[[str], Any] = print) -> dict:
    """Evaluate the synthetic data set in ``folder``.

    Args:
        folder (str): output of the synthesis pipeline.
        eval_cfg (dict): ``test_data`` plus the keys of DEFAULT_EVAL.
        real_train_cfg (dict): the real training set (for
            representativeness).

    Returns:
        dict: per classifier accuracies (list), mean and std, plus
        diversity, representativeness (and their ``_feat`` versions with a
        ``feature_extractor``) and the number of images.
    """
    cfg = {**DEFAULT_EVAL, **dict(eval_cfg)}
    if 'test_data' not in cfg:
        raise UserError('evaluation.test_data is not set (the real test '
                        'split)')
    x_test, y_test = dataset_tensors(cfg['test_data'])
    size = cfg['image_size'] or x_test.shape[-1]
    ch = cfg['channels'] or x_test.shape[1]
    if x_test.shape[-1] != size:
        x_test = F.interpolate(x_test, size=(size, size), mode='bilinear',
                               align_corners=False)
    x, y = load_synthetic(folder, size, ch)
    real_train_cfg = dict(real_train_cfg)
    if 'image_size' in real_train_cfg:  # load at the evaluation size
        real_train_cfg['image_size'] = size
    x_real, y_real = dataset_tensors(real_train_cfg)
    if x_real.shape[-1] != size:
        x_real = F.interpolate(x_real, size=(size, size), mode='bilinear',
                               align_corners=False)
    num_classes = int(max(y_test.max(), y.max())) + 1
    result = dict(num_images=len(x))
    result['diversity'], result['representativeness'] = \
        diversity_representativeness(x, y, x_real, y_real,
                                     cfg['num_neighbours'])
    if cfg['feature_extractor']:
        ext = build_extractor(cfg['feature_extractor'])
        result['diversity_feat'], result['representativeness_feat'] = \
            diversity_representativeness(
                _features(ext, x), y, _features(ext, x_real), y_real,
                cfg['num_neighbours'])
    train_keys = ('iterations', 'batch_size', 'lr', 'momentum',
                  'weight_decay', 'milestones', 'shift', 'flip')
    for net_cfg in cfg['classifiers']:
        accs = [train_and_test(net_cfg, x, y, x_test, y_test, num_classes,
                               int(seed), **{k: cfg[k] for k in train_keys})
                for seed in cfg['seeds']]
        name = net_cfg['type']
        result[name] = dict(accs=accs, mean=float(np.mean(accs)),
                            std=float(np.std(accs)))
        log(f'{name}: final-epoch top-1 {np.mean(accs):.2f} +- '
            f'{np.std(accs):.2f} % over seeds {list(cfg["seeds"])}')
    log(f'diversity {result["diversity"]:.4f}  representativeness '
        f'{result["representativeness"]:.4f}  ({len(x)} images)')
    if 'diversity_feat' in result:
        log(f'feature space: diversity {result["diversity_feat"]:.4f}  '
            f'representativeness {result["representativeness_feat"]:.4f}')
    return result
