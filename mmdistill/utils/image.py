"""Image grids for samples."""
import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C):
    round((x + 1) * 127.5)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: torch.Tensor,
              nrow: int,
              pad: int = 1,
              upscale: int = 1) -> np.ndarray:
    """Tile (B, C, H, W) images in [-1, 1] into one uint8 array, ``nrow``
    images per row, ``pad`` white pixels between them, each pixel repeated
    ``upscale`` times (small digits are 8x8)."""
    arr = to_uint8(images)
    if upscale > 1:
        arr = arr.repeat(upscale, 1).repeat(upscale, 2)
    b, h, w, c = arr.shape
    rows = (b + nrow - 1) // nrow
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255,
                   np.uint8)
    for i in range(b):
        r, k = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    return grid[..., 0] if c == 1 else grid


def save_grid(images: torch.Tensor,
              path: str,
              nrow: int,
              pad: int = 1,
              upscale: int = 1) -> str:
    """Write :func:`make_grid` to a PNG file (atomically)."""
    from PIL import Image

    from .checkpoint import atomic_write
    grid = make_grid(images, nrow, pad, upscale)
    atomic_write(path, lambda f: Image.fromarray(grid).save(f, format='PNG'))
    return path
