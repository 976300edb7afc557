"""Shared helpers of the reliability, security and bad-input tests."""
import contextlib
import io
import os
import runpy
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER = 'configs/teacher/cfg_unet_digits.py'
FOLDER_CFG = 'tests/data/reliability/cfg_image_folder.py'
STALL_CFG = 'tests/data/reliability/cfg_stall.py'
PROGRESSIVE_CFG = 'tests/data/reliability/cfg_progressive_tiny.py'
TEACHER_LIKE = (TEACHER, FOLDER_CFG, STALL_CFG)
# a tiny, fast teacher with the crash-safe checkpoint hook and optimizer
TINY_UNET = 'model.denoiser.base_channels=8'
SMALL = [
    'train_dataloader.batch_size=16',
    'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.type=AtomicCheckpointHook',
    'default_hooks.checkpoint.interval=1',
    'optim_wrapper.type=SafeOptimWrapper', 'log_level=WARNING',
    # the digits configs' FID validation would cost more than these runs
    'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
]


def env(**extra):
    e = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def train_cmd(config, work_dir, *opts, extra=()):
    """tools/train.py argv; the teacher configs get a tiny UNet."""
    tiny = [TINY_UNET] if config in TEACHER_LIKE else []
    return [sys.executable, 'tools/train.py', config, '--work-dir',
            str(work_dir), *extra, '--cfg-options', *SMALL, *tiny, *opts]


def run_train(config, work_dir, *opts, extra=(), timeout=240, **envs):
    """tools/train.py in a fresh interpreter (exit code, no traceback)."""
    return subprocess.run(train_cmd(config, work_dir, *opts, extra=extra),
                          cwd=ROOT, env=env(**envs), capture_output=True,
                          text=True, timeout=timeout)


def run_train_inprocess(config, work_dir, *opts, extra=()):
    """tools/train.py's ``main`` (the same ``cli_main`` error handling) in
    this process: (exit code, stderr). Saves ~5 s of imports per case."""
    argv = [*train_cmd(config, work_dir, *opts,
                       f'experiment_name=t{uuid.uuid4().hex[:12]}',
                       extra=extra)[1:]]
    old_argv, old_cwd = sys.argv, os.getcwd()
    err, code = io.StringIO(), 0
    sys.argv = argv
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_path('tools/train.py', run_name='__main__')
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return code, err.getvalue()


def assert_one_line_error(code, stderr, *words):
    """Non-zero exit, the last line ``error: ...`` naming the problem, no
    traceback."""
    assert code not in (0, None), stderr[-2000:]
    assert 'Traceback' not in stderr, stderr[-3000:]
    last = [ln for ln in stderr.splitlines() if ln.strip()][-1]
    assert last.startswith('error: '), stderr[-2000:]
    for w in words:
        assert w in last, (w, last)
    return last


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(d, f)
            with open(p, 'rb') as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


def assert_not_damaged(before, folder):
    """Every file of ``before`` is still there, byte for byte."""
    after = snapshot(folder)
    for k, v in before.items():
        assert after.get(k) == v, f'{k} was changed or removed'
