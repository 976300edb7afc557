import os

import pytest
import torch

os.environ.setdefault('OMP_NUM_THREADS', '2')

from mmdistill import register_all_modules  # noqa: E402

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory, repo_root):
    """A randomly initialised digits CFG teacher (the shipped architecture)
    saved as a state dict."""
    from mmengine.config import Config

    from mmdistill.registry import MODELS
    cfg = Config.fromfile(os.path.join(repo_root,
                                       'configs/teacher/cfg_unet_digits.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model.to_dict())
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save(model.state_dict(), path)
    return str(path)
