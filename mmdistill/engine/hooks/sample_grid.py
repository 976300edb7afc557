"""Sample grids during training, written through the runner's visualizer.

Every ``interval`` iterations the model samples a fixed set of labels from
fixed seeds at a fixed guidance weight, so consecutive grids differ only by
training progress. The grid goes to ``runner.visualizer.add_image``: with
mmengine's ``LocalVisBackend`` it is a PNG under
``<work_dir>/<timestamp>/vis_data/vis_image/``; TensorBoard and WandB
backends, when installed and configured in ``vis_backends``, show it too.

Sampling never changes training: the torch (CPU and CUDA), NumPy and Python
random states are saved before and restored after, the noise comes from
per-image generators, and the model's train / eval mode is put back, so a
run with the hook trains bit-identical weights to one without it.
"""
from typing import Any, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmdistill.models.sharding import is_sharded
from mmdistill.registry import HOOKS
from mmdistill.utils.image import make_grid, to_rgb
from mmdistill.utils.rng import preserved_rng


def image_generators(n: int, seed: int) -> list:
    """One generator per image (image i seeded ``seed + i``), as the
    evaluation samples: an image does not depend on the others."""
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


@HOOKS.register_module()
class SampleGridHook(Hook):
    """Draw a grid of samples every ``interval`` training iterations.

    Args:
        interval (int): iterations between grids; the last iteration of
            training always draws one. 0 disables the hook.
        labels (list[int], optional): the classes, one image each; default
            ``per_class`` images of every class, one row per class.
        per_class (int): images per class when ``labels`` is None.
        nrow (int, optional): images per grid row (default ``per_class``).
        guidance (float): guidance weight w (Meng's convention).
        steps (int, optional): sampler steps; None: the model's default
            (a progressive student's current N).
        sampler (str, optional): 'ddim' (default of the model), 'ddpm'...
        seed (int): image i starts from the noise of seed ``seed + i``.
        sample_model (str): 'ema' or 'orig' weights.
        cell (int): each image drawn at about this many pixels (nearest
            neighbour upscaling).
        name (str): image name for the visualizer (the PNG is
            ``<name>_<iteration>.png``).
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 500,
                 labels: Optional[Sequence[int]] = None,
                 per_class: int = 8,
                 nrow: Optional[int] = None,
                 guidance: float = 2.0,
                 steps: Optional[int] = None,
                 sampler: Optional[str] = None,
                 seed: int = 0,
                 sample_model: str = 'ema',
                 cell: int = 32,
                 name: str = 'samples') -> None:
        if not isinstance(interval, int) or interval < 0:
            raise ValueError(f'interval must be an integer >= 0, got '
                             f'{interval!r}')
        if per_class < 1:
            raise ValueError(f'per_class must be >= 1, got {per_class}')
        self.interval = interval
        self.labels = None if labels is None else [int(v) for v in labels]
        self.per_class, self.nrow = per_class, nrow
        self.guidance, self.steps, self.sampler = guidance, steps, sampler
        self.seed, self.sample_model = seed, sample_model
        self.cell, self.name = cell, name

    def grid_labels(self, num_classes: int) -> torch.Tensor:
        """The classes of the grid, row by row."""
        if self.labels is not None:
            return torch.as_tensor(self.labels, dtype=torch.long)
        return torch.arange(num_classes).repeat_interleave(self.per_class)

    @torch.no_grad()
    def draw(self, model: Any) -> np.ndarray:
        """The grid (H, W, 3) uint8 of ``model`` (RNG and mode preserved)."""
        labels = self.grid_labels(model.num_classes)
        shape = tuple(model.image_shape)
        was_training = model.training
        with preserved_rng():
            gens = image_generators(len(labels), self.seed)
            noise = torch.stack([torch.randn(shape, generator=g)
                                 for g in gens])
            model.eval()
            try:
                images = model.sample(labels, noise=noise, steps=self.steps,
                                      guidance=self.guidance,
                                      sampler=self.sampler, generator=gens,
                                      sample_model=self.sample_model)
            finally:
                model.train(was_training)
        nrow = self.nrow or (self.per_class if self.labels is None
                             else len(labels))
        return to_rgb(make_grid(images, nrow=nrow, cell=self.cell))

    def after_train_iter(self, runner: Any, batch_idx: int,
                         data_batch: Any = None, outputs: Any = None) -> None:
        if self.interval == 0:
            return
        step = runner.iter + 1
        if step % self.interval and step != runner.max_iters:
            return
        model = getattr(runner.model, 'module', runner.model)
        # a sharded model samples on every rank (its forward all-gathers)
        if not is_main_process() and not is_sharded(model):
            return
        grid = self.draw(model)
        if is_main_process():
            runner.visualizer.add_image(self.name, grid, step=step)
