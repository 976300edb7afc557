"""Random-state helpers."""
import contextlib
import random

import numpy as np
import torch


@contextlib.contextmanager
def preserved_rng():
    """Restore the torch (CPU and every initialised CUDA device), NumPy and
    Python random states on exit: code run inside (sampling a grid, a
    validation pass) does not change what training draws next."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() \
        and torch.cuda.is_initialized() else None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(np_state)
        random.setstate(py_state)
