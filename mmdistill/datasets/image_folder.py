"""Class-folder image data sets on disk: root/<class>/*.png|jpg|jpeg|bmp|webp
(ImageNet style). Classes are the sorted sub-folder names."""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from mmdistill.registry import DATASETS
from mmdistill.utils import UserError

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')


def scan_class_folders(root):
    """[(path, class_index)], classes. One-line errors for a missing root,
    no class folders, or an empty class folder."""
    if not os.path.isdir(root):
        raise UserError(f'data folder not found: {root} (set data_root to a '
                        'folder of class sub-folders)')
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise UserError(f'no class folders in {root} (expected '
                        'root/<class>/*.png)')
    items = []
    for ci, c in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(root, c))
                       if f.lower().endswith(IMG_EXTENSIONS))
        if not files:
            raise UserError(f'class folder {os.path.join(root, c)} holds no '
                            f'images ({"/".join(IMG_EXTENSIONS)}); add images '
                            'or remove the folder')
        items += [(os.path.join(root, c, f), ci) for f in files]
    return items, classes


def _high_depth_grey(im):
    """A 16-bit (or 32-bit integer / float) grey image as a float image
    with values in [0, 255]: scaled by its bit depth instead of clipped by
    ``convert('L')``. Other modes are returned unchanged."""
    from PIL import Image
    if im.mode.startswith('I;16'):
        top = 65535.0
    elif im.mode == 'I':
        arr = np.asarray(im)
        top = 65535.0 if arr.max(initial=0) <= 65535 else 2.0 ** 31 - 1
    elif im.mode == 'F':
        arr = np.asarray(im)
        top = 1.0 if arr.max(initial=0) <= 1 else 255.0
    else:
        return im
    arr = np.asarray(im, dtype=np.float64) / top * 255.0
    return Image.fromarray(arr.clip(0, 255).astype(np.float32), mode='F')


def load_image(path, image_size, channels):
    """Read, convert to L/RGB (16-bit grey scaled by its bit depth), resize
    (bicubic; centre crop to square) and scale to [-1, 1] as (C, S, S)
    float32."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im = _high_depth_grey(im)
            if im.mode != 'F':
                im = im.convert('L' if channels == 1 else 'RGB')
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s,
                          (h - s) // 2 + s))
            if s != image_size:
                im = im.resize((image_size, image_size), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.float32)
            if im.mode == 'F':
                arr = arr.clip(0, 255)
                if channels == 3:
                    arr = np.repeat(arr[..., None], 3, axis=2)
            arr = arr / 127.5 - 1
    except Image.DecompressionBombError as e:
        import re
        n = re.search(r'\((\d+) pixels\)', str(e))
        raise UserError(
            f'image {path} is too large to read safely '
            f'({n.group(1) if n else "too many"} pixels, PIL allows '
            f'{2 * Image.MAX_IMAGE_PIXELS}; a decompression bomb?); remove '
            'the file or shrink it') from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserError(f'unreadable image {path} ({type(e).__name__}); '
                        'remove or replace the file') from e
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


@DATASETS.register_module()
class ImageFolderDataset(Dataset):
    """Images in class folders, for CIFAR-10, ImageNet 64, ImageNette... from
    disk.

    Args:
        data_root (str): folder of class sub-folders.
        image_size (int): square output size.
        channels (int): 1 (grey) or 3 (RGB); images of other modes are
            converted.
        check_images (bool): open every image once at start-up so a bad file
            fails early with its name (instead of mid-training).
    """

    def __init__(self, data_root, image_size=32, channels=3,
                 check_images=False):
        if channels not in (1, 3):
            raise UserError(f'channels must be 1 (grey) or 3 (RGB), got '
                            f'{channels!r}; images of other modes (RGBA, P, '
                            'CMYK...) are converted automatically')
        if not isinstance(image_size, int) or image_size < 1:
            raise UserError(f'image_size must be a positive integer, got '
                            f'{image_size!r}')
        self.items, classes = scan_class_folders(data_root)
        self.data_root = data_root
        self.image_size, self.channels = image_size, channels
        self.metainfo = dict(classes=tuple(classes))
        if check_images:
            for p, _ in self.items:
                load_image(p, image_size, channels)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        return dict(inputs=load_image(path, self.image_size, self.channels),
                    data_samples=label)
