from .digits import DigitsDataset, load_digits_split
from .image_folder import ImageFolderDataset, load_image, scan_class_folders

__all__ = [
    'DigitsDataset', 'ImageFolderDataset', 'load_digits_split', 'load_image',
    'scan_class_folders'
]
