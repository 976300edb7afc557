"""Generative metrics for ``val_evaluator`` / ``test_evaluator``: FID, IS
and the accuracy of generated samples, with mmagic-like parameters.

They are driven by :class:`mmdistill.engine.loops.GenerativeTestLoop` (or
:func:`mmdistill.evaluation.evaluate_generator`), which gives them an
:class:`EvalContext`; each metric generates with ``model.sample(...)``.
"""
from typing import Any, Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmdistill.registry import METRICS
from mmdistill.utils import UserError
from .extractors import FeatureExtractor
from .functional import accuracy, frechet_distance, inception_score
from .generative import EvalContext, setting_name


class GenerativeMetric(BaseMetric):
    """Common parameters of the generative metrics.

    Args:
        fake_nums (int): generated samples per setting.
        real_nums (int): real images for the statistics (-1: all).
        sample_model (str): 'ema' or 'orig' weights.
        sample_kwargs (dict): sampler settings, e.g.
            ``dict(steps=4, guidance=2.0, sampler='ddim')``; missing keys
            come from the model's ``default_sample``.
        sweep (list[dict]): several ``sample_kwargs`` evaluated in turn, each
            reported under its own name (e.g. ``FID-10k/4step-w2``).
        prefix (str): metric name prefix.
        extractor (dict): feature extractor,
            ``dict(type='classifier' | 'inception', ...)``.
        real_stats_cache (str, optional): folder caching real statistics in
            ``<extractor>__<data set>__n<N>.pt``.
        base_seed (int): sample i uses seed base_seed + i.
    """
    needs_probs = False
    default_prefix = ''

    def __init__(self,
                 fake_nums: int = 2000,
                 real_nums: int = -1,
                 sample_model: str = 'ema',
                 sample_kwargs: Optional[dict] = None,
                 sweep: Optional[List[dict]] = None,
                 prefix: Optional[str] = None,
                 extractor: dict = dict(type='classifier'),
                 real_stats_cache: Optional[str] = None,
                 base_seed: int = 0,
                 collect_device: str = 'cpu') -> None:
        super().__init__(collect_device=collect_device, prefix=None)
        if sample_model not in ('ema', 'orig'):
            raise UserError(f"sample_model must be 'ema' or 'orig', got "
                            f'{sample_model!r}')
        if not isinstance(fake_nums, int) or fake_nums < 2:
            raise UserError(f'fake_nums must be an integer >= 2, got '
                            f'{fake_nums!r}')
        self.fake_nums, self.real_nums = fake_nums, real_nums
        self.sample_model = sample_model
        self.settings = [dict(s) for s in sweep] if sweep else [
            dict(sample_kwargs or {})]
        self.name_prefix = prefix or self.default_prefix
        self.extractor_cfg = dict(extractor)
        self.real_stats_cache = real_stats_cache
        self.base_seed = base_seed

    # BaseMetric's per-batch interface is unused: the loop calls
    # evaluate_generative() once.
    def process(self, data_batch: Any, data_samples: Sequence) -> None:
        pass

    def compute_metrics(self, results: list) -> Dict[str, float]:
        return {}

    def name(self, ctx: EvalContext, kw: dict) -> str:
        return setting_name(self.name_prefix, self.fake_nums,
                            ctx.sample_kwargs(kw))

    def fake(self, ctx: EvalContext, kw: dict,
             extractor: FeatureExtractor) -> Optional[dict]:
        return ctx.fake_features(extractor, kw, self.fake_nums,
                                 self.sample_model, self.base_seed)

    def evaluate_generative(self, ctx: EvalContext) -> Dict[str, float]:
        """dict name -> value on rank 0 (empty dict on other ranks)."""
        raise NotImplementedError


@METRICS.register_module()
class FID(GenerativeMetric):
    """Frechet distance between features of generated samples and of the
    real images (``reference='real'``) or of another model's samples
    (``reference='teacher'``: ``model.teacher.sample(**reference_kwargs)``,
    e.g. the 256-step teacher, to measure a student's faithfulness).

    Args:
        reference (str): 'real' or 'teacher'.
        reference_kwargs (dict): sampler settings of the reference model.
        reference_nums (int, optional): reference samples (default
            fake_nums).
    """
    default_prefix = 'FID'

    def __init__(self,
                 reference: str = 'real',
                 reference_kwargs: Optional[dict] = None,
                 reference_nums: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if reference not in ('real', 'teacher'):
            raise UserError(f"FID reference must be 'real' or 'teacher', "
                            f'got {reference!r}')
        self.reference = reference
        self.reference_kwargs = dict(reference_kwargs or {})
        self.reference_nums = reference_nums or self.fake_nums
        if reference == 'teacher' and self.name_prefix == 'FID':
            self.name_prefix = 'FID-teacher'

    def reference_stats(self, ctx: EvalContext,
                        ext: FeatureExtractor) -> Optional[dict]:
        if self.reference == 'real':
            return ctx.real_features(ext, self.real_nums,
                                     self.real_stats_cache)
        teacher = getattr(ctx.model, 'teacher', None)
        if teacher is None:
            raise UserError("FID(reference='teacher') needs a model with a "
                            "'teacher' attribute (a distilled student); use "
                            "reference='real' for this model")
        kw = ctx.sample_kwargs(self.reference_kwargs, teacher)
        return ctx.fake_features(
            ext, kw, self.reference_nums, self.sample_model, self.base_seed,
            model=teacher, desc='teacher ' + setting_name(
                '', self.reference_nums, kw)[1:],
            cache_dir=self.real_stats_cache)

    def evaluate_generative(self, ctx: EvalContext) -> Dict[str, float]:
        ext = ctx.extractor(self.extractor_cfg)
        ref = self.reference_stats(ctx, ext)
        out = {}
        for kw in self.settings:
            fake = self.fake(ctx, kw, ext)
            if fake is not None:
                out[self.name(ctx, kw)] = frechet_distance(
                    fake['mu'], fake['sigma'], ref['mu'], ref['sigma'])
        return out


@METRICS.register_module()
class IS(GenerativeMetric):
    """Inception Score exp(E_x KL(p(y|x) || p(y))) of generated samples,
    mean over ``splits`` chunks (``<name>`` and ``<name>-std``)."""
    needs_probs = True
    default_prefix = 'IS'

    def __init__(self, splits: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.splits = splits

    def evaluate_generative(self, ctx: EvalContext) -> Dict[str, float]:
        ext = ctx.extractor(self.extractor_cfg)
        out = {}
        for kw in self.settings:
            fake = self.fake(ctx, kw, ext)
            if fake is not None:
                mean, std = inception_score(fake['probs'], self.splits)
                name = self.name(ctx, kw)
                out[name], out[name + '-std'] = mean, std
        return out


@METRICS.register_module()
class SampleAccuracy(GenerativeMetric):
    """Fraction of generated samples that the classifier extractor assigns
    to the class they were generated for (labels i % num_classes)."""
    needs_probs = True
    default_prefix = 'Acc'

    def evaluate_generative(self, ctx: EvalContext) -> Dict[str, float]:
        ext = ctx.extractor(self.extractor_cfg)
        out = {}
        for kw in self.settings:
            fake = self.fake(ctx, kw, ext)
            if fake is not None:
                if fake['probs'].shape[1] != ctx.model.num_classes:
                    raise UserError(
                        f'SampleAccuracy needs a classifier over the '
                        f'{ctx.model.num_classes} classes of the model, the '
                        f'extractor has {fake["probs"].shape[1]} outputs')
                out[self.name(ctx, kw)] = accuracy(fake['probs'],
                                                   fake['labels'])
        return out
