"""A compact class-conditional UNet for small images (digits, CIFAR-10); the
network itself is in :mod:`.portable` (torch + diffusers only)."""
from mmdistill.registry import MODELS
from .portable import CompactUNet, ResBlock, SelfAttention

MODELS.register_module(module=CompactUNet)

__all__ = ['CompactUNet', 'ResBlock', 'SelfAttention']
