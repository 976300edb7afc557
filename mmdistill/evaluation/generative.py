"""Distributed, batch-split-independent sampling and feature extraction.

Sample i of an evaluation has class ``i % num_classes`` (balanced labels) and
its own ``torch.Generator`` seeded with ``base_seed + i``, used for its
initial noise and for any sampler noise. Indices are cut into global batches
of a fixed size; rank r processes global batches r, r + W, ... . Every batch
therefore holds the same samples whatever the process count, so 1 and W
processes give identical features. Features are gathered on rank 0 in index
order; rank 0 computes the metrics and broadcasts them.
"""
import hashlib
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import broadcast_object_list, gather_object, get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from torch import nn
from torch.utils.data import Dataset

from mmdistill.utils import UserError, atomic_torch_save
from .extractors import FeatureExtractor, build_extractor
from .functional import feature_statistics


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a (Distributed)DataParallel wrapper."""
    return getattr(model, 'module', model)


def format_count(n: int) -> str:
    """10000 -> '10k', 2000 -> '2k', 1500 -> '1.5k', 360 -> '360'."""
    return f'{n / 1000:g}k' if n >= 1000 and n % 100 == 0 else str(n)


def setting_name(prefix: str, n: int, kw: dict) -> str:
    """Metric name such as ``FID-10k/4step-w2`` (sampler added unless
    'ddim')."""
    name = (f'{prefix}-{format_count(n)}/{kw["steps"]}step-'
            f'w{float(kw["guidance"]):g}')
    if kw.get('sampler', 'ddim') != 'ddim':
        name += f'-{kw["sampler"]}'
    return name


def _bcast(obj):
    rank, world = get_dist_info()
    if world == 1:
        return obj
    box = [obj if rank == 0 else None]
    broadcast_object_list(box, src=0)
    return box[0]


def _read_stats(path):
    """``dict(mu, sigma)`` from a statistics file, or None if it is missing
    or unusable (truncated, not a statistics file, inconsistent shapes)."""
    if not osp.isfile(path):
        return None
    try:
        st = torch.load(path, map_location='cpu', weights_only=True)
        mu, sigma = st['mu'].double().numpy(), st['sigma'].double().numpy()
    except Exception as exc:  # noqa: BLE001 (any unreadable file)
        print_log(f'ignoring the unreadable statistics cache {path} '
                  f'({type(exc).__name__}); recomputing it', 'current',
                  logging.WARNING)
        return None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        print_log(f'ignoring the statistics cache {path} (shapes '
                  f'{mu.shape}, {sigma.shape}); recomputing it', 'current',
                  logging.WARNING)
        return None
    return dict(mu=mu, sigma=sigma)


def _cached_stats(path):
    """(hit, stats): whether usable Gaussian statistics are cached at
    ``path`` (decided on rank 0, broadcast) and, on rank 0,
    ``dict(mu, sigma)`` read with ``weights_only=True`` (None on the other
    ranks). An unreadable file is a miss: it is recomputed and replaced."""
    rank, _ = get_dist_info()
    stats = _read_stats(path) if rank == 0 else None
    hit = _bcast(stats is not None if rank == 0 else None)
    return hit, stats


def my_batches(n: int, batch_size: int) -> List[List[int]]:
    """This rank's global batches (lists of sample indices)."""
    rank, world = get_dist_info()
    starts = list(range(0, n, batch_size))[rank::world]
    return [list(range(s, min(s + batch_size, n))) for s in starts]


class TensorSource:
    """Real images given as tensors (N, C, H, W) in [-1, 1] (+ labels)."""

    def __init__(self,
                 images: torch.Tensor,
                 labels: Optional[torch.Tensor] = None,
                 key: str = 'tensors') -> None:
        self.images = torch.as_tensor(images).float()
        self.labels = None if labels is None else torch.as_tensor(
            labels).long()
        self.key = key

    def __len__(self) -> int:
        return len(self.images)

    def __call__(
            self,
            idx: List[int]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        lab = None if self.labels is None else self.labels[idx]
        return self.images[idx], lab


class DatasetSource:
    """Real images from a data set returning ``dict(inputs, data_samples)``.
    ``key`` names it in cache files (class, split, size, length)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.key = '-'.join(str(p) for p in (
            type(dataset).__name__, getattr(dataset, 'split', ''),
            'x'.join(map(str, dataset[0]['inputs'].shape)), len(dataset))
            if p != '')

    def __len__(self) -> int:
        return len(self.dataset)

    def __call__(self, idx: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        items = [self.dataset[i] for i in idx]
        return (torch.stack([torch.as_tensor(it['inputs']) for it in items]
                            ).float(),
                torch.as_tensor([int(it['data_samples']) for it in items]))


class SampleSource:
    """Generated images: ``model.sample`` with balanced labels and
    per-sample seeds."""

    def __init__(self,
                 model: nn.Module,
                 sample_kwargs: dict,
                 sample_model: str = 'ema',
                 base_seed: int = 0) -> None:
        self.model = unwrap(model)
        self.kwargs = dict(sample_kwargs)
        self.sample_model, self.base_seed = sample_model, base_seed
        self.num_classes = self.model.num_classes

    def __call__(self, idx: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        gens = [torch.Generator().manual_seed(self.base_seed + i)
                for i in idx]
        shape = tuple(self.model.image_shape)
        noise = torch.stack([torch.randn(shape, generator=g) for g in gens])
        labels = torch.as_tensor([i % self.num_classes for i in idx])
        imgs = self.model.sample(labels, noise=noise, generator=gens,
                                 sample_model=self.sample_model,
                                 **self.kwargs)
        return imgs.float().cpu(), labels


def extract_distributed(
        source: Union[TensorSource, DatasetSource, SampleSource],
        n: int,
        extractor: FeatureExtractor,
        batch_size: int = 500,
        probs: bool = True,
        desc: str = 'features',
        progress: bool = True) -> Optional[Dict[str, Optional[torch.Tensor]]]:
    """Features of items 0..n-1 of ``source``; every rank does its share.

    Returns on rank 0 ``dict(features (n, D), probs (n, K), labels (n,))``
    (CPU tensors, index order); None on other ranks.
    """
    rank, world = get_dist_info()
    batches = my_batches(n, batch_size)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=n, desc=desc, unit='img', leave=False,
                   dynamic_ncols=True)
    part = dict(idx=[], features=[], probs=[], labels=[])
    for idx in batches:
        imgs, labels = source(idx)
        out = extractor.extract(imgs, probs=probs)
        part['idx'].append(torch.as_tensor(idx))
        part['features'].append(out['features'].double().cpu())
        if probs:
            part['probs'].append(out['probs'].double().cpu())
        if labels is not None:
            part['labels'].append(torch.as_tensor(labels).cpu())
        if bar is not None:
            bar.update(len(idx) * world)
    if bar is not None:
        bar.close()
    part = {k: torch.cat(v) if v else None for k, v in part.items()}
    parts = [part] if world == 1 else gather_object(part, dst=0)
    if rank != 0:
        return None
    parts = [p for p in parts if p['idx'] is not None]
    order = torch.cat([p['idx'] for p in parts]).argsort()
    out = {}
    for k in ('features', 'probs', 'labels'):
        vals = [p[k] for p in parts if p[k] is not None]
        out[k] = torch.cat(vals)[order] if len(vals) == len(parts) else None
    return out


def _module_digest(module):
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(
            torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


class EvalContext:
    """Shares extractors, real statistics and generated features between the
    metrics of one evaluation (a sweep generates each setting once).

    Args:
        model: the generative model (``sample()`` API; DDP is unwrapped).
        real (TensorSource | DatasetSource | None): the real images.
        batch_size (int): images per generation/extraction batch (fixed,
            independent of the process count).
        progress (bool): show tqdm bars on rank 0.
    """

    def __init__(self,
                 model: Optional[nn.Module],
                 real: Optional[Union[TensorSource, DatasetSource]] = None,
                 batch_size: int = 500,
                 progress: bool = True) -> None:
        self.model = unwrap(model) if model is not None else None
        self.real = real
        self.batch_size, self.progress = batch_size, progress
        self._extractors, self._memo = {}, {}
        self.probs_needed = set()

    def extractor(
            self, cfg: Union[str, dict, FeatureExtractor]) -> FeatureExtractor:
        key = repr(sorted(cfg.items())) if isinstance(cfg, dict) else \
            repr(cfg)
        if key not in self._extractors:
            ext = build_extractor(cfg)
            if self.model is not None:
                try:
                    dev = self.model.device_of()
                    ext = ext.to(dev)
                except (AttributeError, StopIteration):
                    pass
            self._extractors[key] = ext
        return self._extractors[key]

    def _memoised(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def real_features(self,
                      extractor: FeatureExtractor,
                      n: Optional[int] = -1,
                      cache_dir: Optional[str] = None,
                      probs: bool = False) -> Optional[dict]:
        """Real-image features (rank 0) or, with ``cache_dir``, statistics
        read from / written to ``<cache_dir>/<extractor>__<data>__n<N>.pt``
        (dict mu, sigma, n; plus mean probs for reuse). Returns
        dict(mu, sigma[, features, probs, labels]) on rank 0, None
        elsewhere."""
        if self.real is None:
            raise UserError('this metric needs real images: give the test '
                            'loop a test_dataloader (or real_images=...)')
        n = len(self.real) if n is None or n < 0 else n
        if n > len(self.real):
            raise UserError(f'real_nums={n} exceeds the {len(self.real)} '
                            f'real images of {self.real.key}; lower it or '
                            'use -1 (all)')
        path = None if cache_dir is None else osp.join(
            cache_dir, f'{extractor.key}__{self.real.key}__n{n}.pt')

        def compute():
            if path is not None and not probs:
                hit, stats = _cached_stats(path)
                if hit:
                    return stats
            out = extract_distributed(
                self.real, n, extractor, self.batch_size, probs,
                desc='real features', progress=self.progress)
            if out is None:
                return None
            mu, sigma = feature_statistics(out['features'])
            out.update(mu=mu, sigma=sigma)
            if path is not None:
                atomic_torch_save(
                    dict(mu=torch.from_numpy(mu), sigma=torch.from_numpy(
                        sigma), n=n, extractor=extractor.key,
                         data=self.real.key), path)
            return out

        return self._memoised(('real', extractor.key, n, probs, path),
                              compute)

    def sample_kwargs(self,
                      kw: Optional[dict],
                      model: Optional[nn.Module] = None) -> dict:
        """``kw`` completed with the model's ``default_sample`` (steps: a
        progressive student's ``num_steps``, else 64)."""
        model = self.model if model is None else model
        full = dict(getattr(model, 'default_sample', {}) or {})
        full.update(kw or {})
        if 'steps' not in full and getattr(model, 'num_steps',
                                           None) is not None:
            # a progressive student samples with its current N by default
            full['steps'] = int(model.num_steps)
        full.setdefault('steps', 64)
        full.setdefault('guidance', 0.0)
        full.setdefault('sampler', 'ddim')
        return full

    def fake_features(self,
                      extractor: FeatureExtractor,
                      kw: Optional[dict],
                      n: int,
                      sample_model: str = 'ema',
                      base_seed: int = 0,
                      model: Optional[nn.Module] = None,
                      desc: Optional[str] = None,
                      cache_dir: Optional[str] = None) -> Optional[dict]:
        """Features (and probs, labels) of ``n`` samples of ``model``
        (default: the evaluated model) with sampler settings ``kw``; rank 0
        gets the dict, other ranks None. With ``cache_dir`` the statistics
        of ``model`` (keyed by its weights digest) are cached on disk."""
        model = self.model if model is None else unwrap(model)
        kw = self.sample_kwargs(kw, model)
        probs = extractor.key in self.probs_needed
        key = ('fake', id(model), extractor.key, tuple(sorted(kw.items())),
               n, sample_model, base_seed, probs)
        desc = desc or 'sampling ' + setting_name('', n, kw)[1:]

        def compute():
            path = None
            if cache_dir is not None and not probs:
                tag = '-'.join(f'{k}{v}' for k, v in sorted(kw.items()))
                path = osp.join(cache_dir, f'{extractor.key}__samples-'
                                f'{_module_digest(model)}-{sample_model}-'
                                f'{tag}-seed{base_seed}__n{n}.pt')
                hit, stats = _cached_stats(path)
                if hit:
                    return stats
            src = SampleSource(model, kw, sample_model, base_seed)
            out = extract_distributed(src, n, extractor, self.batch_size,
                                      probs, desc=desc,
                                      progress=self.progress)
            if out is not None:
                out['mu'], out['sigma'] = feature_statistics(out['features'])
                if path is not None:
                    atomic_torch_save(dict(
                        mu=torch.from_numpy(out['mu']),
                        sigma=torch.from_numpy(out['sigma']), n=n), path)
            return out

        return self._memoised(key, compute)


def run_metrics(metrics: Sequence[BaseMetric],
                ctx: EvalContext) -> Dict[str, float]:
    """Evaluate generative metrics in one context; results (dict name ->
    float) computed on rank 0 and broadcast to every rank."""
    for m in metrics:
        if getattr(m, 'needs_probs', False):
            ctx.probs_needed.add(ctx.extractor(m.extractor_cfg).key)
    results = {}
    for m in metrics:
        res = m.evaluate_generative(ctx)
        results.update(res or {})
    rank, _ = get_dist_info()
    return _bcast(results if rank == 0 else None)
