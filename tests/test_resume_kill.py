"""Kill and resume: a training process SIGKILLed at a random iteration and
resumed with ``tools/train.py --resume`` ends with exactly the weights (and,
in stage 2, the halving state N and the saved students) of an uninterrupted
run with the same seed."""
import os
import random
import signal
import subprocess
import time

import pytest
import torch

from _reliability import (PROGRESSIVE_CFG, ROOT, TEACHER, env, run_train,
                          train_cmd)


def _state(path):
    return torch.load(path, weights_only=True)['state_dict']


def _assert_same(a, b, what):
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), (what, k)


TAKEOVER_STALL = """
import os, runpy, sys, time
import mmdistill.utils.lock as lock


class _StallingOS:
    # the lock module's os: stalls right after the stale lock file has been
    # emptied, before the new owner is written
    def __getattr__(self, name):
        return getattr(os, name)

    def ftruncate(self, fd, length):
        os.ftruncate(fd, length)
        open(os.environ['TAKEOVER_MARKER'], 'w').close()
        time.sleep(600)


lock.os = _StallingOS()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def _kill_during_takeover(tmp_path, config, wd, opts):
    """A second run on the stale lock of a killed one, SIGKILLed in the
    middle of taking the lock over."""
    driver, marker = tmp_path / 'takeover_stall.py', tmp_path / 'taking'
    driver.write_text(TAKEOVER_STALL)
    cmd = train_cmd(config, wd, *opts, extra=['--resume'])
    p = subprocess.Popen([cmd[0], str(driver), *cmd[1:]], cwd=ROOT,
                         env=env(TAKEOVER_MARKER=marker),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while not marker.exists():
        assert p.poll() is None, p.communicate()[1][-3000:]
        assert time.time() - t0 < 120
        time.sleep(0.02)
    assert open(wd / '.mmdistill.lock').read() == ''  # mid-takeover
    p.send_signal(signal.SIGKILL)
    p.wait()


def _kill_and_resume(tmp_path, config, max_iters, opts=(),
                     kill_takeover=False):
    kill_after = random.randint(2, max_iters - 2)
    ref_wd, wd = tmp_path / 'reference', tmp_path / 'killed'
    opts = [f'train_cfg.max_iters={max_iters}', 'randomness.seed=7', *opts]
    ref = subprocess.Popen(train_cmd(config, ref_wd, *opts), cwd=ROOT,
                           env=env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    victim = subprocess.Popen(train_cmd(config, wd, *opts), cwd=ROOT,
                              env=env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    t0 = time.time()
    while not (wd / f'iter_{kill_after}.pth').exists():
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.time() - t0 < 300
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)  # mid-iteration kill_after + 1
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (wd / f'iter_{max_iters}.pth').exists()
    if kill_takeover:
        _kill_during_takeover(tmp_path, config, wd, opts)
    r = run_train(config, wd, *opts, extra=['--resume'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert ref.wait(timeout=300) == 0, ref.communicate()[1][-3000:]
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]
    final = f'iter_{max_iters}.pth'
    _assert_same(_state(ref_wd / final), _state(wd / final),
                 f'final weights (killed after {kill_after})')
    return ref_wd, wd, kill_after


def test_stage2_kill_and_resume_is_exact(tmp_path):
    ref_wd, wd, k = _kill_and_resume(tmp_path, PROGRESSIVE_CFG, 9)
    assert int(_state(wd / 'iter_9.pth')['num_steps']) == 1
    for i in range(1, 10):  # N at every iteration, where both exist
        if (wd / f'iter_{i}.pth').exists():
            assert int(_state(wd / f'iter_{i}.pth')['num_steps']) == int(
                _state(ref_wd / f'iter_{i}.pth')['num_steps'])
    for n in (4, 2, 1):
        _assert_same(_state(ref_wd / f'student_{n}step.pth'),
                     _state(wd / f'student_{n}step.pth'),
                     f'{n}-step student (killed after {k})')


@pytest.mark.slow
def test_teacher_kill_and_resume_is_exact(tmp_path):
    _kill_and_resume(tmp_path, TEACHER, 8)


@pytest.mark.slow
def test_kill_during_lock_takeover_then_resume_is_exact(tmp_path):
    """Killed run, then a second run killed while taking over its stale
    lock (the lock file emptied, no owner written yet): a third run takes
    the lock, resumes and ends with the uninterrupted run's weights."""
    _kill_and_resume(tmp_path, TEACHER, 8, kill_takeover=True)
