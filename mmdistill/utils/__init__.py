from .checkpoint import (atomic_torch_save, atomic_write, check_finite,
                         complete_student_state, download_checkpoint,
                         is_url, load_into,
                         load_state_dict, load_student_checkpoint,
                         sub_state_dict)
from .errors import UserError
from .hashing import file_sha256

__all__ = [
    'UserError', 'atomic_torch_save', 'atomic_write', 'check_finite',
    'complete_student_state', 'download_checkpoint', 'file_sha256',
    'is_url',
    'load_into', 'load_state_dict', 'load_student_checkpoint',
    'sub_state_dict'
]
