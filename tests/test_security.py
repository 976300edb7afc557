"""Untrusted checkpoints: nothing a user hands in may run code on load.

A crafted pickle whose ``__reduce__`` would run a command (here: create a
marker file) must be refused with a one-line error, and the marker must not
appear. User checkpoints (``load_from``, teacher weights) are read with
``weights_only=True``; only the run's own resume files are read with the
short allow-list of :func:`mmdistill.engine.runner.resume_allowlist`, and a
resume file holding any other global is refused.
"""
import fractions
import os

import pytest
import torch

from _reliability import TEACHER, assert_one_line_error, run_train_inprocess


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _malicious(path, marker):
    torch.save({'state_dict': {'w': torch.zeros(2)},
                'meta': {'x': _Payload(marker)}}, path)
    return path


@pytest.fixture(scope='module')
def own_checkpoint(tmp_path_factory):
    """A resume checkpoint written by a real 2-iteration run."""
    wd = tmp_path_factory.mktemp('own')
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=2')
    assert code == 0, err[-2000:]
    return wd / 'iter_2.pth'


def test_payload_is_real_and_load_state_dict_refuses_it(tmp_path):
    """The control proves the crafted file does run code when unpickled
    unsafely; the safe loader refuses it and the marker never appears."""
    from mmdistill.utils import UserError, load_state_dict
    marker = tmp_path / 'pwned'
    path = _malicious(tmp_path / 'evil.pth', marker)
    with pytest.raises(UserError) as e:
        load_state_dict(path)
    msg = str(e.value)
    assert '\n' not in msg and 'refusing to load' in msg
    assert 'system' in msg  # names the offending global
    assert not marker.exists()
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


def test_safetensors_and_plain_state_dicts_load(tmp_path):
    from safetensors.torch import save_file

    from mmdistill.utils import load_state_dict
    sd = {'net.w': torch.arange(4.0)}
    save_file(sd, str(tmp_path / 'a.safetensors'))
    torch.save({'state_dict': sd}, tmp_path / 'b.pth')
    for name in ('a.safetensors', 'b.pth'):
        got = load_state_dict(tmp_path / name)
        assert torch.equal(got['net.w'], sd['net.w'])


def test_malicious_load_from(tmp_path):
    marker = tmp_path / 'pwned'
    evil = _malicious(tmp_path / 'evil.pth', marker)
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w',
                                    f'load_from={evil}',
                                    'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'refusing to load', 'evil.pth',
                          'system')
    assert not marker.exists()


def test_malicious_teacher_checkpoint(tmp_path):
    marker = tmp_path / 'pwned'
    evil = _malicious(tmp_path / 'teacher.pth', marker)
    code, err = run_train_inprocess(
        'configs/guided_distill/guided_distill_digits.py', tmp_path / 'w',
        f'model.teacher_ckpt={evil}', 'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'refusing to load', 'teacher.pth')
    assert not marker.exists()


def _with_extra(own_checkpoint, path, extra):
    ck = torch.load(own_checkpoint, weights_only=True)
    ck['meta']['extra'] = extra
    torch.save(ck, path)
    return path


def test_resume_refuses_globals_outside_allowlist(tmp_path, own_checkpoint):
    # the run's own file resumes (positive control) ...
    code, err = run_train_inprocess(TEACHER, tmp_path / 'ok',
                                    'train_cfg.max_iters=3',
                                    extra=['--resume', str(own_checkpoint)])
    assert code == 0, err[-2000:]
    # ... the same file with one harmless but non-allow-listed global not
    bad = _with_extra(own_checkpoint, tmp_path / 'extra.pth',
                      fractions.Fraction(1, 3))
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w1',
                                    'train_cfg.max_iters=3',
                                    extra=['--resume', str(bad)])
    assert_one_line_error(code, err, 'refusing to resume', 'allow-list',
                          'Fraction')
    # ... and a payload neither, without running it
    marker = tmp_path / 'pwned'
    evil = _with_extra(own_checkpoint, tmp_path / 'evil.pth',
                       _Payload(marker))
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w2',
                                    'train_cfg.max_iters=3',
                                    extra=['--resume', str(evil)])
    assert_one_line_error(code, err, 'refusing to resume', 'system')
    assert not marker.exists()


def test_resume_allowlist_is_short_and_holds_no_callables_that_run_code():
    from mmdistill.engine.runner import resume_allowlist
    allowed = resume_allowlist()
    names = {getattr(a, '__qualname__', repr(a)) for a in allowed}
    for dangerous in ('system', 'eval', 'exec', 'Popen', 'run', 'open',
                      '__import__', 'import_module', 'load', 'loads'):
        assert dangerous not in names
    assert len(allowed) <= 16
