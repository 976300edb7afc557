"""Reliability findings: each case reproduces a failure through the real
code path (the real loader, writer, data set or command) and checks the
one-line error / the correct result."""
import os
import subprocess
import sys
import time

import pytest
import torch

from _reliability import (ROOT, TEACHER, assert_not_damaged,
                          assert_one_line_error, env, run_train,
                          run_train_inprocess, snapshot)


# ----------------------------------------------- 1. export of a student
@pytest.fixture(scope='module')
def tiny_unet2d(tmp_path_factory):
    from _tiny_diffusers import make_tiny_unet2d
    return make_tiny_unet2d(str(tmp_path_factory.mktemp('unet2d') / 'm'))


def _stage1(folder, ema=dict(decay=0.5)):
    import mmdistill  # noqa: F401
    from mmdistill.registry import MODELS
    den = dict(type='DiffusersUNet2D', pretrained=folder)
    pre = dict(type='DiffusionDataPreprocessor')
    teacher = dict(type='DiffusersCFGDiffusion', denoiser=den,
                   data_preprocessor=pre)
    return MODELS.build(dict(type='GuidanceDistiller', teacher=teacher,
                             w_min=0.0, w_max=4.0, ema=ema,
                             data_preprocessor=pre))


def _trained(model):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return {f'net.{k}': v.clone() for k, v in model.net.state_dict().items()}


def test_export_net_only_checkpoint_exports_trained_weights(tiny_unet2d,
                                                            tmp_path):
    """A ``student_{N}step.pth``-layout file (only ``net.*``) into a config
    with EMA: the exported network is the trained one, not the
    initialisation the EMA copy still holds."""
    from mmdistill.models.adapters.export import export_student
    from mmdistill.utils import load_student_checkpoint
    src = _stage1(tiny_unet2d)
    state = _trained(src)
    ckpt = tmp_path / 'student_1step.pth'
    torch.save(dict(state_dict=state), ckpt)
    fresh = _stage1(tiny_unet2d)
    load_student_checkpoint(fresh, str(ckpt))
    out = tmp_path / 'out'
    export_student(fresh, str(out))
    from safetensors.torch import load_file
    exported = load_file(str(out / 'unet' /
                             'diffusion_pytorch_model.safetensors'))
    for k, v in exported.items():
        torch.testing.assert_close(v, state[f'net.model.{k}'])


def test_export_incomplete_checkpoint_is_refused(tiny_unet2d, tmp_path):
    from mmdistill.utils import load_student_checkpoint
    from mmdistill.utils import UserError
    state = _trained(_stage1(tiny_unet2d))
    one = dict([next(iter(state.items()))])
    ckpt = tmp_path / 'one_key.pth'
    torch.save(dict(state_dict=one), ckpt)
    with pytest.raises(UserError, match=r"lacks \d+ of the \d+ weights "
                       r"under 'net\.'"):
        load_student_checkpoint(_stage1(tiny_unet2d), str(ckpt))
    # an EMA that is present must be complete as well
    part = dict(state)
    part['net_ema.' + next(iter(state))[4:]] = one[next(iter(one))]
    torch.save(dict(state_dict=part), ckpt)
    with pytest.raises(UserError, match="under 'net_ema.'"):
        load_student_checkpoint(_stage1(tiny_unet2d), str(ckpt))


def test_load_from_incomplete_checkpoint_is_refused(tmp_path):
    """``load_from`` with a file that holds one matching key: an error, not
    a model that trains on from its initialisation."""
    good = tmp_path / 'good'
    code, err = run_train_inprocess(TEACHER, good, 'train_cfg.max_iters=1')
    assert code == 0, err[-2000:]
    state = torch.load(good / 'iter_1.pth', weights_only=False)['state_dict']
    k = next(k for k in state if k.startswith('net.'))
    one = tmp_path / 'one.pth'
    torch.save({k: state[k]}, one)
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w',
                                    f'load_from={one}',
                                    'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'lacks', "under 'net.'")


# ------------------------------------------------- 2. one run per work dir
HELPERS = os.path.join(ROOT, 'tests', 'data', 'reliability')
STALL_CFG = 'tests/data/reliability/cfg_stall.py'


def _wait_for(path, proc, timeout=200):
    import time
    t0 = time.time()
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, 'the first run never got there'
        time.sleep(0.05)


@pytest.mark.slow  # two real training processes (~25 s)
def test_second_run_in_the_same_work_dir_is_refused(tmp_path):
    """Run A stalls in the middle of its iteration-3 checkpoint write (its
    temporary file is live). Run B, a second real process in the same work
    dir, is refused with a one-line error naming A, and A's files (its live
    temporary file included) are untouched. After A is killed its lock is
    stale: the next run takes it over with a message and trains."""
    import signal

    from _reliability import train_cmd
    wd, marker = tmp_path / 'run', tmp_path / 'writing'
    a = subprocess.Popen(
        train_cmd(STALL_CFG, wd, 'train_cfg.max_iters=5'), cwd=ROOT,
        env=env(PYTHONPATH=os.pathsep.join([ROOT, HELPERS]),
                STALL_MARKER=marker),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(marker, a)
        live = [f for f in os.listdir(wd) if f.endswith('.tmp')]
        assert live, os.listdir(wd)
        before = snapshot(wd)
        b = run_train(TEACHER, wd, 'train_cfg.max_iters=1')
        last = assert_one_line_error(b.returncode, b.stderr, 'in use by',
                                     f'pid {a.pid}', '--work-dir')
        assert b.returncode == 2, last
        assert_not_damaged(before, wd)
        assert sorted(snapshot(wd)) == sorted(before)  # nothing new either
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait()
    c = run_train(TEACHER, wd, 'train_cfg.max_iters=3', extra=['--resume'])
    assert c.returncode == 0, c.stderr[-2000:]
    assert 'taking over the stale lock' in c.stderr
    assert f'pid {a.pid}' in c.stderr
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]
    assert not os.path.exists(wd / '.mmdistill.lock')


def test_restart_removes_only_temp_files_of_dead_writers(tmp_path,
                                                        monkeypatch):
    """``AtomicCheckpointHook.before_train`` keeps the temporary file of a
    live writer (a real other process) and removes those of dead ones."""
    from types import SimpleNamespace

    from mmengine.hooks import CheckpointHook

    from mmdistill.engine.hooks.atomic_checkpoint import AtomicCheckpointHook
    live = subprocess.Popen([sys.executable, '-c',
                             'import time; time.sleep(60)'])
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    try:
        keep = tmp_path / f'.iter_3.pth.p{live.pid}.abc123.tmp'
        gone = tmp_path / f'.iter_2.pth.p{dead.pid}.xyz789.tmp'
        for f in (keep, gone):
            f.write_bytes(b'partial')
        hook = AtomicCheckpointHook(interval=1, out_dir=str(tmp_path))
        hook.out_dir = str(tmp_path)
        monkeypatch.setattr(CheckpointHook, 'before_train',
                            lambda self, runner: None)
        runner = SimpleNamespace(work_dir=str(tmp_path))
        hook.before_train(runner)
        assert keep.exists() and not gone.exists()
    finally:
        live.kill()
        live.wait()


# ---------------------------------- 3. more class folders than num_classes
def _class_folders(root, n):
    from PIL import Image
    for c in range(n):
        d = root / f'c{c:02d}'
        d.mkdir(parents=True)
        Image.new('L', (8, 8), 10 * c).save(d / '0.png')
    return root


@pytest.mark.parametrize('extra', [1, 2])
def test_more_class_folders_than_num_classes(tmp_path, extra):
    """10-class model, 10 + ``extra`` class folders: refused before training
    with both numbers (one extra used to train as the null label, two died
    with an IndexError)."""
    from _reliability import FOLDER_CFG
    root = _class_folders(tmp_path / 'd', 10 + extra)
    wd = tmp_path / 'w'
    code, err = run_train_inprocess(
        FOLDER_CFG, wd, f'train_dataloader.dataset.data_root={root}',
        'train_dataloader.batch_size=12', 'train_cfg.max_iters=1')
    assert_one_line_error(code, err, f'{10 + extra} class folders',
                          'num_classes=10')
    assert not list(wd.glob('*.pth'))


# --------------------------------- 4. --resume with a non-resume checkpoint
@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """A finished 2-iteration tiny teacher run."""
    wd = tmp_path_factory.mktemp('tiny_run')
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=2')
    assert code == 0, err[-2000:]
    return wd


def _not_resume_files(tmp, run):
    import zipfile
    good = torch.load(run / 'iter_2.pth', weights_only=False)
    files = {}
    files['teacher_weights'] = (os.path.join(ROOT, 'checkpoints',
                                             'digits_teacher.pth'), [])
    p = tmp / 'bare.pth'
    torch.save(good['state_dict'], p)
    files['bare_state_dict'] = (str(p), [])
    p = tmp / 'list.pth'
    torch.save([1, 2, 3], p)
    files['list_payload'] = (str(p), [])
    p = tmp / 'notorch.zip'
    with zipfile.ZipFile(p, 'w') as z:
        z.writestr('readme.txt', 'a zip, not a torch checkpoint')
    files['zip_not_torch'] = (str(p), [])
    files['other_shapes'] = (str(run / 'iter_2.pth'),
                             ['model.denoiser.base_channels=16'])
    return files


RESUME_WORDS = {
    'teacher_weights': ['holds model weights only', 'load_from=',
                        'teacher_ckpt='],
    'bare_state_dict': ['bare state dict', 'load_from='],
    'list_payload': ['holds a list', 'iter_*.pth'],
    'zip_not_torch': ['not a torch checkpoint', 'iter_*.pth'],
    'other_shapes': ['other shapes', 'net.', 'the config it was trained'],
}


@pytest.mark.parametrize('case', sorted(RESUME_WORDS))
def test_resume_from_a_file_that_is_not_a_resume_checkpoint(case, tiny_run,
                                                             tmp_path):
    path, opts = _not_resume_files(tmp_path, tiny_run)[case]
    wd = tmp_path / 'w'
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=3',
                                    *opts, extra=['--resume', path])
    assert_one_line_error(code, err, os.path.basename(path),
                          *RESUME_WORDS[case])
    assert not list(wd.glob('*.pth'))


# ------------------------------------ 5. 16-bit grey PNGs, decompression bombs
def test_16bit_grey_png_keeps_its_grey_levels(tmp_path):
    """A 0..65535 ramp (PIL mode I;16) is scaled by its bit depth, not
    clipped to black/white by convert('L')."""
    import numpy as np
    from PIL import Image

    from mmdistill.datasets import ImageFolderDataset
    d = tmp_path / 'd' / 'c0'
    d.mkdir(parents=True)
    ramp = (np.arange(64, dtype=np.float64).reshape(8, 8) / 63 * 65535)
    Image.fromarray(ramp.round().astype(np.uint16)).save(d / 'ramp16.png')
    assert Image.open(d / 'ramp16.png').mode.startswith('I;16')
    for channels in (1, 3):
        ds = ImageFolderDataset(str(tmp_path / 'd'), image_size=8,
                                channels=channels)
        x = ds[0]['inputs']
        want = torch.from_numpy(ramp / 65535 * 2 - 1).float()
        for c in range(channels):
            torch.testing.assert_close(x[c], want, atol=1 / 127.5, rtol=0)


def _png_bomb(path, side=60000):
    """A PNG whose header claims side x side pixels (far above PIL's
    decompression-bomb limit); the file itself is tiny."""
    import struct
    import zlib

    from PIL import Image
    Image.new('L', (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    # IHDR: 8-byte signature, 4 length, 4 type, then width and height
    data[16:24] = struct.pack('>II', side, side)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_decompression_bomb_is_a_one_line_error(tmp_path):
    from PIL import Image
    root = tmp_path / 'd'
    for c in ('a', 'b'):
        (root / c).mkdir(parents=True)
        Image.new('L', (8, 8), 100).save(root / c / '0.png')
    _png_bomb(root / 'b' / 'bomb.png')
    with pytest.raises(Image.DecompressionBombError):
        Image.open(root / 'b' / 'bomb.png')  # the real PIL check
    code, err = run_train_inprocess(
        'tests/data/reliability/cfg_image_folder.py', tmp_path / 'w',
        f'train_dataloader.dataset.data_root={root}',
        'train_dataloader.batch_size=3', 'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'bomb.png', 'pixels', 'remove')


# ------------------------------------------------ 6. tracebacks that escape
def test_work_dir_is_an_existing_file(tmp_path):
    blocker = tmp_path / 'wd.txt'
    blocker.write_text('a file')
    code, err = run_train_inprocess(TEACHER, blocker, 'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'wd.txt', 'is a file', '--work-dir')
    assert blocker.read_text() == 'a file'


def _export_config(folder, tmp_path):
    """A stage-1 config of a tiny diffusers UNet and a complete checkpoint
    of it."""
    cfg = tmp_path / 'export_cfg.py'
    cfg.write_text(
        "den = dict(type='DiffusersUNet2D', pretrained=%r)\n"
        "pre = dict(type='DiffusionDataPreprocessor')\n"
        "model = dict(type='GuidanceDistiller', teacher=dict(\n"
        "    type='DiffusersCFGDiffusion', denoiser=den,\n"
        "    data_preprocessor=pre), w_min=0.0, w_max=4.0,\n"
        "    ema=dict(decay=0.5), data_preprocessor=pre)\n" % folder)
    ckpt = tmp_path / 'stage1.pth'
    torch.save(dict(state_dict=_stage1(folder).state_dict()), ckpt)
    return str(cfg), str(ckpt)


def test_export_out_dir_is_an_existing_file(tiny_unet2d, tmp_path):
    cfg, ckpt = _export_config(tiny_unet2d, tmp_path)
    blocker = tmp_path / 'out.txt'
    blocker.write_text('a file')
    r = subprocess.run([sys.executable, 'tools/export.py', cfg, ckpt,
                        str(blocker)], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 2, r.stderr[-2000:]
    assert_one_line_error(r.returncode, r.stderr, 'out.txt', 'is a file')
    assert blocker.read_text() == 'a file'


@pytest.mark.parametrize('opt,words', [
    ('param_scheduler.7.end=3', ['param_scheduler.7.end', 'index 7',
                                 '2 entries']),
    ('=3', ["'=3'", 'empty key']),
    ('train_cfg..max_iters=3', ['empty key']),
])
def test_bad_cfg_options_key(opt, words, tmp_path):
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w', opt)
    assert_one_line_error(code, err, 'bad --cfg-options entry', *words)
    assert not (tmp_path / 'w').exists() or not list(
        (tmp_path / 'w').rglob('*.py'))


@pytest.mark.slow  # two synthesis runs of the shipped teacher (~25 s)
def test_synthesize_resume_with_damaged_modes(tmp_path):
    out = tmp_path / 'd'
    cmd = [sys.executable, 'tools/synthesize.py',
           'configs/mgd3/mgd3_digits_ipc1.py', '--out-dir', str(out),
           '--no-progress']
    r = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True,
                       text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    modes = out / 'modes.pt'
    assert modes.is_file()
    modes.write_bytes(modes.read_bytes()[:200])
    before = snapshot(out)
    r = subprocess.run(cmd + ['--resume'], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=400)
    assert_one_line_error(r.returncode, r.stderr, 'modes.pt', 'damaged',
                          '--overwrite')
    assert r.returncode == 2
    assert_not_damaged(before, out)


# ----------------------------------------------- 7. messages that mislead
def test_unknown_optimizer_type_is_named(tmp_path):
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w',
                                    'optim_wrapper.optimizer.type=AdamX',
                                    'train_cfg.max_iters=1')
    last = assert_one_line_error(code, err, "unknown type 'AdamX'")
    assert 'None is not a callable' not in last


MY_OPTIMIZER = """
import torch
from mmdistill.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
class MyAdam(torch.optim.Adam):
    pass
"""


@pytest.mark.slow  # three training processes (~20 s)
def test_custom_imports_through_cfg_options(tmp_path):
    """``custom_imports`` given with --cfg-options is imported (the
    unknown-type error recommends it); a module that does not exist is a
    one-line error."""
    (tmp_path / 'my_optimizer.py').write_text(MY_OPTIMIZER)
    path = os.pathsep.join([ROOT, str(tmp_path)])
    opts = ('optim_wrapper.optimizer.type=MyAdam', 'train_cfg.max_iters=1')
    r = run_train(TEACHER, tmp_path / 'a', *opts, PYTHONPATH=path)
    assert_one_line_error(r.returncode, r.stderr, "unknown type 'MyAdam'",
                          'custom_imports')
    r = run_train(TEACHER, tmp_path / 'b', *opts,
                  'custom_imports.imports=[my_optimizer]', PYTHONPATH=path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / 'b' / 'iter_1.pth').is_file()
    r = run_train(TEACHER, tmp_path / 'c', *opts,
                  'custom_imports.imports=[no_such_module_xyz]',
                  PYTHONPATH=path)
    assert_one_line_error(r.returncode, r.stderr, 'cannot import '
                          "custom_imports ['no_such_module_xyz']")


def test_non_numeric_lr_keeps_its_quotes(tmp_path):
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w',
                                    'optim_wrapper.optimizer.lr=fast',
                                    'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'optim_wrapper.optimizer.lr',
                          "'fast'", 'number')


def test_explain_keeps_quotes_of_a_non_key_error():
    from mmdistill.apis import explain
    e = TypeError("'<=' not supported between instances of 'float' and "
                  "'str'")
    assert explain(e).endswith("'<=' not supported between instances of "
                               "'float' and 'str'")


def test_bad_magic_resume_file(tiny_run, tmp_path):
    """A checkpoint whose first bytes were overwritten: the zip directory
    at its end is intact, torch falls back to its legacy reader."""
    data = bytearray((tiny_run / 'iter_2.pth').read_bytes())
    data[:4] = b'XXXX'
    bad = tmp_path / 'badmagic.pth'
    bad.write_bytes(bytes(data))
    code, err = run_train_inprocess(TEACHER, tmp_path / 'w',
                                    'train_cfg.max_iters=3',
                                    extra=['--resume', str(bad)])
    last = assert_one_line_error(code, err, 'badmagic.pth',
                                 'not a torch checkpoint')
    assert 'invalid configuration' not in last and 'utf-8' not in last


def _nan_teacher(tmp_path):
    state = torch.load(os.path.join(ROOT, 'checkpoints',
                                    'digits_teacher.pth'), weights_only=True)
    for k, v in state['state_dict'].items():
        if v.is_floating_point() and k.startswith('net_ema.'):
            v.view(-1)[0] = float('nan')
    p = tmp_path / 'nan_teacher.pth'
    torch.save(state, p)
    return p


def test_nan_weights_in_test_py(tmp_path):
    cfg = tmp_path / 'eval_tiny.py'
    base = os.path.join(ROOT, 'configs/teacher/cfg_unet_digits_eval.py')
    cfg.write_text(
        f"_base_ = [{base!r}]\n"
        "test_evaluator = dict(_delete_=True, type='Evaluator', metrics=[\n"
        "    dict(type='FID', fake_nums=50, sweep=[dict(steps=2, guidance=0,"
        " sampler='ddim')], extractor=dict(type='classifier', checkpoint="
        f"{os.path.join(ROOT, 'checkpoints/digits_classifier.pth')!r}),"
        f" real_stats_cache={str(tmp_path / 'stats')!r})])\n"
        "test_cfg = dict(type='GenerativeTestLoop', batch_size=50)\n")
    r = subprocess.run([sys.executable, 'tools/test.py', str(cfg),
                        str(_nan_teacher(tmp_path)), '--work-dir',
                        str(tmp_path / 'w')], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=300)
    last = assert_one_line_error(r.returncode, r.stderr, 'nan_teacher.pth',
                                 'not finite', 'net_ema.')
    assert r.returncode == 2 and 'Eigenvalues' not in last


# --------------------------------------------- 8. bad input changes files
@pytest.mark.parametrize('opt', ['optim_wrapper.optimizer.lr=fast',
                                 'optim_wrapper.optimizer.type=AdamX'])
def test_error_at_training_start_keeps_the_config_dump(opt, tmp_path):
    wd = tmp_path / 'w'
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=1')
    assert code == 0, err[-2000:]
    dumps = list(wd.glob('*.py'))
    assert dumps
    before = snapshot(wd)
    # mmengine names a run's log folder by the second it started: a second
    # run within the same second would share it (a known gap)
    time.sleep(1.1)
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=2',
                                    opt)
    assert_one_line_error(code, err)
    assert_not_damaged(before, wd)


# ------------------------------------------------ 9. exit 0 with garbage
def _sample(tmp_path, ckpt, *args):
    out = tmp_path / 'grid.png'
    r = subprocess.run([sys.executable, 'tools/sample.py', TEACHER,
                        str(ckpt), '--steps', '1', '--per-class', '1',
                        '--out', str(out), *args], cwd=ROOT, env=env(),
                       capture_output=True, text=True, timeout=240)
    return r, out


@pytest.mark.parametrize('value', ['nan', 'inf'])
def test_sample_refuses_non_finite_guidance(value, tmp_path):
    r, out = _sample(tmp_path, os.path.join(ROOT, 'checkpoints',
                                            'digits_teacher.pth'),
                     '--guidance', value)
    assert_one_line_error(r.returncode, r.stderr, '--guidance', 'finite')
    assert r.returncode == 2 and not out.exists()


def test_sample_refuses_nan_weights(tmp_path):
    r, out = _sample(tmp_path, _nan_teacher(tmp_path))
    assert_one_line_error(r.returncode, r.stderr, 'nan_teacher.pth',
                          'not finite')
    assert r.returncode == 2 and not out.exists()


def test_export_refuses_non_finite_guidance(tiny_unet2d, tmp_path):
    cfg, ckpt = _export_config(tiny_unet2d, tmp_path)
    r = subprocess.run([sys.executable, 'tools/export.py', cfg, ckpt,
                        str(tmp_path / 'out'), '--guidance', 'nan'],
                       cwd=ROOT, env=env(), capture_output=True, text=True,
                       timeout=240)
    assert_one_line_error(r.returncode, r.stderr, '--guidance', 'finite')
    assert not (tmp_path / 'out').exists()


# ------------------------------------------------------ 10. a real full disk
@pytest.fixture
def small_fs(tmp_path):
    """A 2.5 MB tmpfs (room for two ~0.9 MB tiny-teacher checkpoints, not a
    third), unmounted afterwards; skipped where mounting is not allowed."""
    mnt = tmp_path / 'small'
    mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2500k', 'tmpfs',
                        str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root / '
                    f'CAP_SYS_ADMIN): {r.stderr.strip()[:120]}')
    try:
        yield mnt
    finally:
        subprocess.run(['umount', '-l', str(mnt)], capture_output=True)


@pytest.mark.slow  # one real training run that fills a file system (~15 s)
def test_full_disk_during_checkpoint_real_filesystem(small_fs):
    """Checkpoints every iteration into a file system that fills up at the
    third: exit 2 and the one-line error (not torch's 'unexpected pos'
    traceback); the two earlier checkpoints and the pointer survive, no
    temporary file is left."""
    from mmdistill.engine.runner import is_complete_checkpoint
    wd = small_fs / 'w'
    r = run_train(TEACHER, wd, 'train_cfg.max_iters=6',
                  'default_hooks.checkpoint.max_keep_ckpts=-1')
    last = assert_one_line_error(r.returncode, r.stderr,
                                 'no space left on device', 'cannot write',
                                 'iter_3.pth')
    assert r.returncode == 2, last
    assert 'inline_container' not in r.stderr
    kept = sorted(p.name for p in wd.glob('iter_*.pth'))
    assert kept == ['iter_1.pth', 'iter_2.pth'], (kept, last)
    for name in kept:
        assert is_complete_checkpoint(str(wd / name))
        torch.load(wd / name, weights_only=False)
    assert (wd / 'last_checkpoint').read_text().strip() == str(
        wd / 'iter_2.pth')
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]


def _fsize_limited(limit):
    def pre():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_file_size_limit_during_checkpoint_real_writer(tmp_path):
    """RLIMIT_FSIZE in the child process: the real torch zip writer gets
    EFBIG half-way through the first checkpoint."""
    wd = tmp_path / 'w'
    r = subprocess.run(
        [sys.executable, 'tools/train.py', TEACHER, '--work-dir', str(wd),
         '--cfg-options', 'train_dataloader.batch_size=16',
         'default_hooks.checkpoint.type=AtomicCheckpointHook',
         'default_hooks.checkpoint.interval=1', 'log_level=WARNING',
         'model.denoiser.base_channels=8', 'train_cfg.max_iters=1'],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=240,
        preexec_fn=_fsize_limited(600_000))
    last = assert_one_line_error(r.returncode, r.stderr, 'cannot write',
                                 'iter_1.pth', 'file too large')
    assert r.returncode == 2, last
    assert not (wd / 'iter_1.pth').exists()
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]


def test_file_size_limit_while_writing_a_png(tmp_path):
    """tools/sample.py's grid through PIL's PNG writer, the file size limit
    hit: one line naming the PNG, no partial file."""
    out = tmp_path / 'grid.png'
    r = subprocess.run(
        [sys.executable, 'tools/sample.py', TEACHER,
         os.path.join(ROOT, 'checkpoints', 'digits_teacher.pth'), '--steps',
         '1', '--per-class', '10', '--upscale', '16', '--out', str(out)],
        cwd=ROOT, env=env(),
        capture_output=True, text=True, timeout=240,
        preexec_fn=_fsize_limited(8_000))  # the grid PNG is ~16 kB
    assert_one_line_error(r.returncode, r.stderr, 'cannot write', 'grid.png',
                          'file too large')
    assert r.returncode == 2
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
