"""Two-process CPU (gloo) training: it trains and checkpoints, and when one
rank dies (SIGKILL) or hangs (SIGSTOP) the other exits with a one-line error
within the bounded timeout ``MMDISTILL_DIST_TIMEOUT`` instead of hanging."""
import signal
import socket
import subprocess
import time

import pytest
import torch

from _reliability import ROOT, TEACHER, env, train_cmd

TIMEOUT_S = 10


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(wd, max_iters):
    port = _free_port()
    procs = []
    for rank in (0, 1):
        cmd = train_cmd(TEACHER, wd, f'train_cfg.max_iters={max_iters}',
                        'default_hooks.checkpoint.interval=2',
                        extra=['--launcher', 'pytorch'])
        procs.append(subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env(RANK=rank, LOCAL_RANK=rank, WORLD_SIZE=2,
                               MASTER_ADDR='127.0.0.1', MASTER_PORT=port,
                               MMDISTILL_DIST_TIMEOUT=TIMEOUT_S)))
    return procs


def _wait_file(path, procs, timeout=300):
    t0 = time.time()
    while not path.exists():
        for p in procs:
            assert p.poll() is None, p.communicate()[1][-3000:]
        assert time.time() - t0 < timeout
        time.sleep(0.05)


def _fault(tmp_path, sig):
    wd = tmp_path / 'run'
    r0, r1 = _launch(wd, 10**6)
    try:
        # both ranks trained two synchronised steps; rank 0 checkpointed
        _wait_file(wd / 'iter_2.pth', (r0, r1))
        assert 'state_dict' in torch.load(wd / 'iter_2.pth',
                                          weights_only=True)
        t0 = time.time()
        r1.send_signal(sig)
        _, err = r0.communicate(timeout=TIMEOUT_S + 90)
        elapsed = time.time() - t0
    finally:
        for p in (r0, r1):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert r0.returncode == 2, err[-3000:]
    assert 'Traceback' not in err, err[-3000:]
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith('error: a process of the distributed run '
                           'failed'), last
    return elapsed


def test_dead_rank_is_detected(tmp_path):
    elapsed = _fault(tmp_path, signal.SIGKILL)
    assert elapsed < TIMEOUT_S + 60


@pytest.mark.slow
def test_hung_rank_times_out(tmp_path):
    elapsed = _fault(tmp_path, signal.SIGSTOP)
    assert TIMEOUT_S - 1 < elapsed < TIMEOUT_S + 60


@pytest.mark.slow
def test_two_process_run_completes(tmp_path):
    wd = tmp_path / 'run'
    procs = _launch(wd, 4)
    for p in procs:
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]
    sd = torch.load(wd / 'iter_4.pth', weights_only=True)['state_dict']
    assert int(sd['num_updates']) == 4
