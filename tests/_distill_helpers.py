"""Tiny models and checkpoints shared by the distillation tests."""
import torch

import mmdistill  # noqa: F401
from mmdistill.registry import MODELS

TINY_NET = dict(type='CompactUNet', in_channels=1, base_channels=8,
                channel_mult=(1, 2), num_res_blocks=1, num_classes=3)


def teacher_cfg(prediction_type='v'):
    return dict(type='CFGDiffusion', denoiser=dict(TINY_NET), num_classes=3,
                image_shape=(1, 8, 8), prediction_type=prediction_type,
                ema=dict(decay=0.9))


def randomize(module, std=0.2, seed=0):
    """Give every parameter random values (zero-initialised output layers
    would make every test trivially pass)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


def save_teacher(path, prediction_type='v', seed=0):
    """A CFGDiffusion checkpoint with random net / different net_ema."""
    m = MODELS.build(teacher_cfg(prediction_type))
    randomize(m.net, seed=seed)
    randomize(m.net_ema, seed=seed + 1)
    torch.save({'state_dict': m.state_dict()}, path)
    return m
