"""Sampling from a trained model in a few lines:

    from mmdistill.apis import MMDistillInferencer
    inferencer = MMDistillInferencer(
        'mmdistill::progressive/progressive_digits_32to1.py',
        'checkpoints/digits_student_4step.pth')
    images = inferencer([0, 1, 2, 3], steps=4, guidance=2.0, seed=0,
                        out_file='digits.png')
"""
import math
import os
from typing import Optional, Sequence, Union

import torch

from mmdistill.utils import UserError
from .inference import as_config, load_for_sampling


class MMDistillInferencer:
    """A generative model built from its config and checkpoint.

    Teachers are loaded whole; for a distiller (a config with
    ``teacher_ckpt``) only the student is loaded, so a student checkpoint is
    enough. Image i of a call starts from the noise of seed ``seed + i``
    (the convention of the evaluation and of the training-time grids): the
    same call gives the same images on any batch split.

    Args:
        config (str | Config): the model's config or its path
            (``mmdistill::<folder>/<name>.py`` names a shipped one).
        checkpoint (str, optional): weights, a local path or an http(s)
            URL (downloaded once into the torch hub cache); None keeps the
            random initialisation (for tests).
        device (str): where the model runs.
        cfg_options (list[str] | dict, optional): config overrides.
        sample_model (str): 'ema' or 'orig' weights.
    """

    def __init__(self,
                 config,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options=None,
                 sample_model: str = 'ema') -> None:
        cfg = as_config(config, cfg_options)
        if cfg.get('model') is None:
            raise UserError('the config has no `model` entry (pass a model '
                            'config, e.g. mmdistill::teacher/'
                            'cfg_unet_digits.py)')
        if sample_model not in ('ema', 'orig'):
            raise UserError(f"sample_model must be 'ema' or 'orig', got "
                            f'{sample_model!r}')
        self.model = load_for_sampling(cfg, checkpoint, device)
        self.cfg, self.checkpoint = cfg, checkpoint
        self.sample_model = sample_model

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    def _labels(self, labels) -> torch.Tensor:
        if labels is None:
            labels = list(range(self.num_classes))
        elif isinstance(labels, int):
            labels = [labels]
        lab = torch.as_tensor(labels).long().view(-1)
        if lab.numel() == 0:
            raise UserError('labels is empty; give class indices, e.g. '
                            '[0, 1, 2]')
        bad = lab[(lab < 0) | (lab >= self.num_classes)]
        if bad.numel():
            raise UserError(f'label {int(bad[0])} is outside the model\'s '
                            f'classes 0..{self.num_classes - 1}')
        return lab

    @torch.no_grad()
    def __call__(self,
                 labels: Union[None, int, Sequence[int],
                               torch.Tensor] = None,
                 steps: Optional[int] = None,
                 guidance: Optional[float] = None,
                 seed: int = 0,
                 sampler: Optional[str] = None,
                 out_file: Optional[str] = None,
                 nrow: Optional[int] = None,
                 cell: int = 32) -> torch.Tensor:
        """Generate one image per label.

        Args:
            labels: class indices (default: one image of every class).
            steps: sampler steps (default: the model's; a progressive
                student's N).
            guidance: guidance weight w, Meng's convention (default: the
                model's).
            seed: image i starts from the noise of seed ``seed + i``.
            sampler: 'ddim', 'ddpm' or 'stochastic' (default: the model's).
            out_file: also write a PNG grid of the images there.
            nrow: images per grid row (default: all in one row, at most
                10).
            cell: grid cell size in pixels (nearest-neighbour upscaling).

        Returns:
            Tensor (B, C, H, W) in [-1, 1] on the CPU.
        """
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise UserError(f'steps must be a positive integer, got '
                            f'{steps!r}')
        if guidance is not None and not math.isfinite(float(guidance)):
            raise UserError(f'guidance must be a finite number, got '
                            f'{guidance}')
        lab = self._labels(labels)
        shape = tuple(self.model.image_shape)
        gens = [torch.Generator().manual_seed(int(seed) + i)
                for i in range(len(lab))]
        noise = torch.stack([torch.randn(shape, generator=g) for g in gens])
        images = self.model.sample(lab, noise=noise, steps=steps,
                                   guidance=guidance, sampler=sampler,
                                   generator=gens,
                                   sample_model=self.sample_model)
        images = images.float().cpu()
        if out_file is not None:
            from mmdistill.utils.image import save_grid
            folder = os.path.dirname(os.path.abspath(out_file))
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise UserError(f'cannot write {out_file}: {folder} is a '
                                'file')
            save_grid(images, out_file, nrow=nrow or min(len(lab), 10),
                      cell=cell)
        return images
