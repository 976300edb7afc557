"""Image grids for samples."""
from typing import Optional

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C):
    round((x + 1) * 127.5)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def upscale_for(size: int, cell: int) -> int:
    """The nearest-neighbour repeat factor that draws an image of ``size``
    pixels at about ``cell`` pixels (at least 1)."""
    return max(1, int(round(cell / max(1, size))))


def make_grid(images: torch.Tensor,
              nrow: int,
              pad: int = 1,
              upscale: int = 1,
              tight: bool = False,
              cell: Optional[int] = None,
              pad_value: int = 255) -> np.ndarray:
    """Tile (B, C, H, W) images in [-1, 1] into one uint8 array.

    Args:
        images: the images, in [-1, 1].
        nrow: images per row of the grid.
        pad: pixels of ``pad_value`` between neighbouring images.
        upscale: each pixel repeated ``upscale`` times in both directions
            (nearest-neighbour; small digits are 8x8).
        tight: no border around the grid (padding only between images)
            and no empty columns when there are fewer than ``nrow`` images.
        cell: draw each image at about ``cell`` pixels (overrides
            ``upscale``; e.g. ``cell=32`` draws 8x8 digits 4x).
        pad_value: grey value of the padding (255: white).

    Returns:
        (H', W') for one channel, else (H', W', C), uint8.
    """
    if nrow < 1:
        raise ValueError(f'nrow must be >= 1, got {nrow}')
    arr = to_uint8(images)
    if cell is not None:
        upscale = upscale_for(arr.shape[1], cell)
    if upscale > 1:
        arr = arr.repeat(upscale, 1).repeat(upscale, 2)
    b, h, w, c = arr.shape
    cols = min(nrow, b) if tight else nrow
    rows = (b + cols - 1) // cols
    border = 0 if tight else pad
    grid = np.full((rows * (h + pad) - pad + 2 * border,
                    cols * (w + pad) - pad + 2 * border, c), pad_value,
                   np.uint8)
    for i in range(b):
        r, k = divmod(i, cols)
        y, x = border + r * (h + pad), border + k * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    return grid[..., 0] if c == 1 else grid


def to_rgb(grid: np.ndarray) -> np.ndarray:
    """A (H, W) or (H, W, 1) grey grid as (H, W, 3) RGB (what visualizer
    backends expect)."""
    if grid.ndim == 2:
        grid = grid[..., None]
    return np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid


def save_grid(images: torch.Tensor,
              path: str,
              nrow: int,
              pad: int = 1,
              upscale: int = 1,
              tight: bool = False,
              cell: Optional[int] = None) -> str:
    """Write :func:`make_grid` to a PNG file (atomically)."""
    from PIL import Image

    from .checkpoint import atomic_write
    grid = make_grid(images, nrow, pad, upscale, tight=tight, cell=cell)
    atomic_write(path, lambda f: Image.fromarray(grid).save(f, format='PNG'))
    return path
