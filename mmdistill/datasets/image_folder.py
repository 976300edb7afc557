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


def load_image(path, image_size, channels):
    """Read, convert to L/RGB, resize (bicubic; centre crop to square) and
    scale to [-1, 1] as (C, S, S) float32."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im = im.convert('L' if channels == 1 else 'RGB')
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s,
                          (h - s) // 2 + s))
            if s != image_size:
                im = im.resize((image_size, image_size), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.float32) / 127.5 - 1
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
