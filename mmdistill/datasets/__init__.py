"""Data sets: digits (embedded), class-folder images, captioned images and
latent caches."""
from .captions import CaptionImageDataset
from .digits import DigitsDataset, load_digits_split
from .image_folder import ImageFolderDataset, load_image, scan_class_folders
from .latent_cache import LatentCacheDataset, write_latent_cache

__all__ = [
    'CaptionImageDataset', 'DigitsDataset', 'ImageFolderDataset',
    'LatentCacheDataset', 'load_digits_split', 'load_image',
    'scan_class_folders', 'write_latent_cache'
]
