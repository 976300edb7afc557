"""Test / validation loops for generative models.

The dataloader only supplies the real images (its data set is read by index
so that real features, like generated ones, are computed in fixed global
batches whatever the process count); every metric of the evaluator
generates through ``model.sample(...)`` (see
:mod:`mmdistill.evaluation.generative`).
"""
from mmengine.runner.loops import BaseLoop

from mmdistill.registry import LOOPS


def _run(loop):
    from mmdistill.evaluation.generative import (DatasetSource, EvalContext,
                                                 run_metrics, unwrap)
    model = unwrap(loop.runner.model)
    model.eval()
    real = DatasetSource(loop.dataloader.dataset) \
        if loop.dataloader is not None else None
    ctx = EvalContext(model, real, batch_size=loop.batch_size,
                      progress=loop.progress)
    metrics = [m for m in loop.evaluator.metrics
               if hasattr(m, 'evaluate_generative')]
    return run_metrics(metrics, ctx)


@LOOPS.register_module()
class GenerativeTestLoop(BaseLoop):
    """Runs the generative metrics of ``test_evaluator`` once.

    Args:
        runner: the runner.
        dataloader (dict | DataLoader): real images.
        evaluator (dict | list | Evaluator): generative metrics.
        batch_size (int): generation / extraction batch size.
        progress (bool): tqdm progress bars on rank 0.
    """

    def __init__(self, runner, dataloader, evaluator, batch_size=500,
                 progress=True):
        super().__init__(runner, dataloader)
        self.evaluator = runner.build_evaluator(evaluator)
        self.batch_size, self.progress = batch_size, progress

    def run(self):
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        metrics = _run(self)
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics


@LOOPS.register_module()
class GenerativeValLoop(BaseLoop):
    """Validation counterpart of :class:`GenerativeTestLoop` (metrics are
    logged and visible to ``save_best``)."""

    def __init__(self, runner, dataloader, evaluator, batch_size=500,
                 progress=False):
        super().__init__(runner, dataloader)
        self.evaluator = runner.build_evaluator(evaluator)
        self.batch_size, self.progress = batch_size, progress

    def run(self):
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        metrics = _run(self)
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics
