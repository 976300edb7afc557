"""Image-caption pairs on disk for text-to-image distillation."""
import json
import os.path as osp

from torch.utils.data import Dataset

from mmdistill.registry import DATASETS
from mmdistill.utils import UserError
from .image_folder import load_image


@DATASETS.register_module()
class CaptionImageDataset(Dataset):
    """``data_root/metadata.jsonl`` with one ``{"file_name": ..., "text":
    ...}`` per line (the Hugging Face imagefolder convention), images
    relative to ``data_root``. Items: ``dict(inputs=(C, S, S) in [-1, 1],
    data_samples=caption)``; ``LatentDataPreprocessor`` encodes both.

    Args:
        data_root (str): folder with the images and ``ann_file``.
        image_size (int): centre-cropped square size.
        ann_file (str): the JSON-lines annotation file.
        channels (int): 3 (RGB) or 1.
    """

    def __init__(self,
                 data_root: str,
                 image_size: int = 512,
                 ann_file: str = 'metadata.jsonl',
                 channels: int = 3) -> None:
        path = osp.join(data_root, ann_file)
        if not osp.isfile(path):
            raise UserError(f'caption file not found: {path} (one JSON '
                            'object per line: {"file_name": "x.png", '
                            '"text": "a caption"})')
        self.items = []
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    self.items.append((osp.join(data_root,
                                                rec['file_name']),
                                       str(rec['text'])))
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise UserError(f'{path}:{i}: bad record ({e}); each line '
                                    'needs "file_name" and "text"') from e
        if not self.items:
            raise UserError(f'{path} lists no images')
        self.captions = [c for _, c in self.items]
        self.image_size, self.channels = image_size, channels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        file, text = self.items[i]
        return dict(inputs=load_image(file, self.image_size, self.channels),
                    data_samples=text)
