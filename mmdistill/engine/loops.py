"""Test / validation loop for generative models.

The dataloader only supplies the real images (its data set is read by index
so that real features, like generated ones, are computed in fixed global
batches whatever the process count); every metric of the evaluator
generates through ``model.sample(...)`` (see
:mod:`mmdistill.evaluation.generative`).

One loop class serves both phases; they differ only in the runner hooks
called (``before_test`` ... or ``before_val`` ...) and the default of
``progress``. ``GenerativeTestLoop`` and ``GenerativeValLoop`` are the
registered names of the two phases.
"""
from typing import Any, Dict, Optional

from mmengine.runner.loops import BaseLoop

from mmdistill.registry import LOOPS

PHASES = ('test', 'val')


@LOOPS.register_module()
class GenerativeLoop(BaseLoop):
    """Runs the generative metrics of the phase's evaluator once.

    Args:
        runner: the runner.
        dataloader (dict | DataLoader | None): real images.
        evaluator (dict | list | Evaluator): generative metrics.
        batch_size: generation / extraction batch size.
        progress: tqdm progress bars on rank 0; None: the phase's default
            (on for test, off for validation).
        phase: 'test' or 'val' (None: the class's ``phase``); selects the
            runner hooks ``before_{phase}``, ``before_{phase}_epoch``,
            ``after_{phase}_epoch`` (with ``metrics``) and
            ``after_{phase}``.
    """

    phase = 'test'
    default_progress = {'test': True, 'val': False}

    def __init__(self, runner, dataloader, evaluator, batch_size: int = 500,
                 progress: Optional[bool] = None,
                 phase: Optional[str] = None) -> None:
        super().__init__(runner, dataloader)
        if phase is not None:
            if phase not in PHASES:
                raise ValueError(f'phase must be one of {PHASES}, got '
                                 f'{phase!r}')
            self.phase = phase
        self.evaluator = runner.build_evaluator(evaluator)
        self.batch_size = batch_size
        self.progress = self.default_progress[self.phase] \
            if progress is None else progress

    def evaluate(self) -> Dict[str, Any]:
        """Compute the evaluator's generative metrics on the model."""
        from mmdistill.evaluation.generative import (DatasetSource,
                                                     EvalContext, run_metrics,
                                                     unwrap)
        model = unwrap(self.runner.model)
        model.eval()
        real = DatasetSource(self.dataloader.dataset) \
            if self.dataloader is not None else None
        ctx = EvalContext(model, real, batch_size=self.batch_size,
                          progress=self.progress)
        metrics = [m for m in self.evaluator.metrics
                   if hasattr(m, 'evaluate_generative')]
        return run_metrics(metrics, ctx)

    def run(self) -> Dict[str, Any]:
        """Run the phase's hooks around :meth:`evaluate`.

        Returns:
            The metrics.
        """
        from mmdistill.utils.rng import preserved_rng
        phase = self.phase
        self.runner.call_hook(f'before_{phase}')
        self.runner.call_hook(f'before_{phase}_epoch')
        # a validation pass inside training must not change what training
        # draws next (the metrics seed their own generators anyway)
        with preserved_rng():
            metrics = self.evaluate()
        self.runner.call_hook(f'after_{phase}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{phase}')
        return metrics


@LOOPS.register_module()
class GenerativeTestLoop(GenerativeLoop):
    """:class:`GenerativeLoop` for ``test_cfg``: runs the generative metrics
    of ``test_evaluator`` once (progress bars on by default)."""

    phase = 'test'


@LOOPS.register_module()
class GenerativeValLoop(GenerativeLoop):
    """:class:`GenerativeLoop` for ``val_cfg`` (metrics are logged and
    visible to ``save_best``; progress bars off by default)."""

    phase = 'val'
