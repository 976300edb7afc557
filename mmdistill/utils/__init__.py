from .checkpoint import (atomic_torch_save, atomic_write, check_finite,
                         complete_student_state, download_checkpoint, is_url,
                         load_into, load_state_dict, load_student_checkpoint,
                         sub_state_dict)
from .errors import UserError
from .hashing import file_sha256
from .package import checkout_dir, mim_dir, package_dir, resolve_package_path

__all__ = [
    'UserError', 'atomic_torch_save', 'atomic_write', 'check_finite',
    'checkout_dir', 'complete_student_state', 'download_checkpoint',
    'file_sha256', 'is_url', 'mim_dir', 'package_dir',
    'resolve_package_path',
    'load_into', 'load_state_dict', 'load_student_checkpoint',
    'sub_state_dict'
]
