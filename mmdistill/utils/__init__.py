from .checkpoint import (atomic_torch_save, atomic_write, load_into,
                         load_state_dict, sub_state_dict)
from .errors import UserError

__all__ = [
    'UserError', 'atomic_torch_save', 'atomic_write', 'load_into',
    'load_state_dict', 'sub_state_dict'
]
