import os

import pytest
import torch

os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
