"""Functional entry point: evaluate a generator without a Runner."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from mmdistill.utils import UserError
from .extractors import FeatureExtractor
from .generative import EvalContext, TensorSource, run_metrics
from .metrics import FID, IS, SampleAccuracy

_METRICS = dict(FID=FID, IS=IS, Acc=SampleAccuracy)


def evaluate_generator(
        model: nn.Module,
        extractor: Union[str, dict, FeatureExtractor] = 'classifier',
        real_images: Optional[torch.Tensor] = None,
        sample_kwargs: Optional[dict] = None,
        n: int = 2000,
        real_labels: Optional[torch.Tensor] = None,
        metrics: Sequence[str] = ('FID', 'IS', 'Acc'),
        sweep: Optional[List[dict]] = None,
        sample_model: str = 'ema',
        base_seed: int = 0,
        batch_size: int = 500,
        real_stats_cache: Optional[str] = None,
        progress: bool = True) -> Dict[str, float]:
    """FID / IS / sample accuracy of ``model.sample`` outputs.

    Args:
        model: a generative model with the ``sample()`` API (teacher or
            student; a DDP wrapper is unwrapped).
        extractor (str | dict | FeatureExtractor): 'classifier' (digits CNN),
            'inception' or a config / built extractor.
        real_images (Tensor): real images (N, C, H, W) in [-1, 1] (FID).
        sample_kwargs (dict): e.g. ``dict(steps=4, guidance=2.0)``.
        n (int): generated samples per setting.
        metrics (tuple[str]): any of 'FID', 'IS', 'Acc'.
        sweep (list[dict]): several sample_kwargs (overrides
            ``sample_kwargs``).
        batch_size (int): samples per batch (results do not depend on it up
            to float round-off, nor on the process count).

    Returns:
        dict: metric name (e.g. ``FID-2k/64step-w2``) -> value, on every
        rank.
    """
    unknown = set(metrics) - set(_METRICS)
    if unknown:
        raise UserError(f'unknown metrics {sorted(unknown)}; choose from '
                        f'{sorted(_METRICS)}')
    real = None if real_images is None else TensorSource(
        real_images, real_labels, key=f'tensors{len(real_images)}')
    ctx = EvalContext(model, real, batch_size=batch_size, progress=progress)
    ext_cfg = extractor if isinstance(extractor, dict) else dict(
        type=extractor) if isinstance(extractor, str) else extractor
    built = []
    for name in metrics:
        m = _METRICS[name](fake_nums=n, sample_model=sample_model,
                           sample_kwargs=sample_kwargs, sweep=sweep,
                           extractor=dict(type='classifier'),
                           real_stats_cache=real_stats_cache,
                           base_seed=base_seed)
        m.extractor_cfg = ext_cfg
        built.append(m)
    return run_metrics(built, ctx)
