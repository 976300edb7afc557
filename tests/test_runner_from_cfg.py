"""A shipped config run by mmengine's own entry points gets mmdistill's
runner: ``configs/_base_/default_runtime.py`` sets ``custom_imports`` and
``runner_type='DistillRunner'``, so a plain ``Runner.from_cfg(cfg)`` (and an
OpenMMLab train.py's ``RUNNERS.build(cfg)``) builds a DistillRunner that
writes its checkpoints atomically and resumes exactly."""
import os
import uuid

import pytest
import torch
from _reliability import ROOT, TEACHER
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmdistill.engine.runner as runner_module
from mmdistill.engine import DistillRunner


class _Interrupted(Exception):
    pass


class _StopAfter(Hook):
    """Ends training (an exception) after iteration ``n``, once its
    checkpoint is written."""
    priority = 'LOWEST'

    def __init__(self, n):
        self.n = n

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.n:
            raise _Interrupted


def _cfg(work_dir, **extra):
    cfg = Config.fromfile(os.path.join(ROOT, TEACHER))
    cfg.merge_from_dict({
        'model.denoiser.base_channels': 8,
        'train_cfg.max_iters': 3,
        'train_dataloader.batch_size': 16,
        'train_dataloader.num_workers': 0,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'randomness.seed': 7,
        'log_level': 'WARNING',
        'work_dir': str(work_dir),
        'experiment_name': f't{uuid.uuid4().hex[:12]}',
        **extra
    })
    # no end-of-training validation: the test is about checkpoints
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


def _weights(path):
    return torch.load(path, weights_only=True)['state_dict']


def test_default_runtime_names_the_runner():
    cfg = Config.fromfile(os.path.join(ROOT, TEACHER))
    assert cfg.runner_type == 'DistillRunner'
    assert cfg.custom_imports == dict(
        imports=['mmdistill', 'mmdistill.engine'],
        allow_failed_imports=False)
    assert runner_module.runner_class_of(cfg) is DistillRunner
    assert runner_module.runner_class_of(dict(runner_type='Runner')) is None
    assert runner_module.runner_class_of(dict()) is None


def test_registry_build_gives_distill_runner(tmp_path):
    runner = RUNNERS.build(_cfg(tmp_path / 'built'))
    try:
        assert type(runner) is DistillRunner
    finally:
        runner.release_work_dir()


def test_plain_runner_from_cfg_is_atomic_and_resumes_exactly(
        tmp_path, monkeypatch):
    saved = []
    atomic = runner_module.atomic_torch_save

    def spy(obj, path):
        saved.append(os.path.basename(path))
        return atomic(obj, path)

    monkeypatch.setattr(runner_module, 'atomic_torch_save', spy)

    ref = Runner.from_cfg(_cfg(tmp_path / 'reference'))
    assert type(ref) is DistillRunner
    ref.train()
    assert saved == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth']

    wd = tmp_path / 'interrupted'
    first = Runner.from_cfg(_cfg(wd))
    assert type(first) is DistillRunner
    first.register_hook(_StopAfter(2))
    with pytest.raises(_Interrupted):
        first.train()
    assert (wd / 'iter_2.pth').exists()
    assert not (wd / 'iter_3.pth').exists()

    resumed = Runner.from_cfg(_cfg(wd, resume=True))
    assert type(resumed) is DistillRunner
    resumed.train()
    assert resumed.iter == 3
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]
    a = _weights(tmp_path / 'reference' / 'iter_3.pth')
    b = _weights(wd / 'iter_3.pth')
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_dispatch_leaves_other_runners_alone(tmp_path):
    cfg = _cfg(tmp_path / 'plain')
    cfg.pop('runner_type')
    runner = Runner.from_cfg(cfg)
    assert type(runner) is Runner
