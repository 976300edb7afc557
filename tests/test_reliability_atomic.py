"""Atomic checkpoints: a process killed (SIGKILL) while it writes a
checkpoint leaves the previous checkpoint intact and loadable, and
``--resume`` finds the newest complete one."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from _reliability import ROOT, env, train_cmd

HELPERS = os.path.join(ROOT, 'tests', 'data', 'reliability')
STALL_CFG = 'tests/data/reliability/cfg_stall.py'

WRITER = r'''
import sys, torch
sys.path.insert(0, {helpers!r})
from stall_hook import Stall
path, marker, mode = sys.argv[1:4]
ck = {{'state_dict': {{'w': torch.full((256, 256), 2.0)}},
      'stall': Stall(marker)}}
if mode == 'atomic':
    # the exact function DistillRunner.save_checkpoint routes writes to
    import mmengine.runner.runner as mm_runner
    from mmdistill.engine.runner import _atomic_mmengine_save
    with _atomic_mmengine_save():
        mm_runner.save_checkpoint(ck, path)
else:
    torch.save(ck, path)  # an in-place writer
'''


def _wait_for(path, proc, timeout=120):
    t0 = time.time()
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, 'writer never started'
        time.sleep(0.05)


def _start_writer(tmp_path, mode):
    path, marker = tmp_path / f'{mode}.pth', tmp_path / f'{mode}.marker'
    torch.save({'state_dict': {'w': torch.full((256, 256), 1.0)}}, path)
    proc = subprocess.Popen(
        [sys.executable, '-c', WRITER.format(helpers=HELPERS), str(path),
         str(marker), mode], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    return path, marker, proc


def test_kill_during_write_keeps_previous_checkpoint(tmp_path):
    """Two writers replace a good checkpoint and are SIGKILLed half-way:
    through DistillRunner's atomic save the old file survives; the in-place
    control (how a plain ``torch.save(obj, path)`` behaves) is destroyed,
    which shows the test can tell the two apart."""
    from mmdistill.utils import load_state_dict
    writers = [_start_writer(tmp_path, m) for m in ('atomic', 'inplace')]
    for path, marker, proc in writers:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (atomic, _, _), (inplace, _, _) = writers
    sd = load_state_dict(atomic)
    assert torch.equal(sd['w'], torch.full((256, 256), 1.0))
    with pytest.raises(Exception):
        load_state_dict(inplace)


def test_training_killed_while_saving_keeps_last_checkpoint(tmp_path):
    """tools/train.py with max_keep_ckpts=1 is killed while writing the
    iteration-3 checkpoint: iteration 2's checkpoint and the pointer to it
    survive (mmengine's hook would already have deleted it), and the
    auto-resume choice is iteration 2."""
    from mmdistill.engine.runner import latest_complete_checkpoint
    from mmdistill.utils import load_state_dict
    wd, marker = tmp_path / 'run', tmp_path / 'writing'
    cmd = train_cmd(STALL_CFG, wd, 'train_cfg.max_iters=5',
                    'default_hooks.checkpoint.max_keep_ckpts=1')
    proc = subprocess.Popen(cmd, cwd=ROOT,
                            env=env(PYTHONPATH=os.pathsep.join([ROOT,
                                                                HELPERS]),
                                    STALL_MARKER=marker),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(marker, proc, timeout=200)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (wd / 'iter_3.pth').exists()
    assert open(wd / 'last_checkpoint').read().strip() == str(
        wd / 'iter_2.pth')
    sd = load_state_dict(wd / 'iter_2.pth')
    assert any(k.startswith('net.') for k in sd)
    assert latest_complete_checkpoint(str(wd)) == str(wd / 'iter_2.pth')


def test_auto_resume_skips_damaged_checkpoints_and_pointer(tmp_path):
    from mmdistill.engine.runner import latest_complete_checkpoint
    from mmdistill.utils import atomic_torch_save
    for i in (1, 2, 10):
        atomic_torch_save({'state_dict': {'w': torch.ones(64, 64) * i}},
                          tmp_path / f'iter_{i}.pth')
    # iteration 11 was cut short; the pointer names it
    full = (tmp_path / 'iter_10.pth').read_bytes()
    (tmp_path / 'iter_11.pth').write_bytes(full[:len(full) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_11.pth'))
    best = str(tmp_path / 'iter_10.pth')  # numeric, not lexical, order
    assert latest_complete_checkpoint(str(tmp_path)) == best
    (tmp_path / 'last_checkpoint').write_text('')  # a torn pointer
    assert latest_complete_checkpoint(str(tmp_path)) == best
    os.unlink(tmp_path / 'last_checkpoint')
    assert latest_complete_checkpoint(str(tmp_path)) == best
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert latest_complete_checkpoint(str(tmp_path)).endswith('iter_2.pth')
    assert latest_complete_checkpoint(str(tmp_path / 'empty')) is None


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path):
    from mmdistill.utils import atomic_write
    p = tmp_path / 'stats.npz'
    p.write_bytes(b'old')

    def boom(f):
        f.write(b'half')
        raise OSError(28, 'No space left on device')

    with pytest.raises(OSError):
        atomic_write(p, boom)
    assert p.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['stats.npz']
