"""The bad-input table (docs/reliability.md): every row is a test here.

Each bad input ends with a one-line ``error: ...`` that names the problem
and the fix, a non-zero exit, no traceback, and no damage to what is
already in the work dir. Most cases run ``tools/train.py``'s ``main`` in
this process (the same ``cli_main`` handling); a few run it in a fresh
interpreter to check the exit status and stderr of the real command.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from _reliability import (FOLDER_CFG, TEACHER, assert_not_damaged,
                          assert_one_line_error, run_train,
                          run_train_inprocess, snapshot)


@pytest.fixture(scope='module')
def good_run(tmp_path_factory):
    """A finished 2-iteration run: its work dir and checkpoint."""
    wd = tmp_path_factory.mktemp('good')
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=2')
    assert code == 0, err[-2000:]
    return wd, wd / 'iter_2.pth'


@pytest.fixture
def guarded(tmp_path, good_run):
    """A work dir holding a copy of a good run; the test checks it is left
    as it was."""
    src, _ = good_run
    wd = tmp_path / 'wd'
    wd.mkdir()
    for name in ('iter_2.pth', 'last_checkpoint'):
        data = (src / name).read_bytes()
        if name == 'last_checkpoint':
            data = str(wd / 'iter_2.pth').encode()
        (wd / name).write_bytes(data)
    return wd, snapshot(wd)


def _png(path, mode='L', size=(8, 8), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def _folder(root, classes=('a', 'b'), n=2):
    for c in classes:
        for i in range(n):
            _png(root / c / f'{i}.png', value=40 * i + 30)
    return root


# --------------------------------------------------------------- configs
CONFIG_CASES = {
    'unknown_type': (['model.denoiser.type=UNetFoo'],
                     ["unknown type 'UNetFoo'", 'spelling']),
    'p_uncond_range': (['model.p_uncond=1.5'],
                       ['p_uncond must be in [0, 1]', '1.5']),
    'prediction_type': (['model.prediction_type=score'],
                        ['prediction_type must be one of', "'score'"]),
    'loss_weighting': (['model.loss.weighting=snr2'],
                       ["unknown loss weighting 'snr2'", 'use one of']),
    'sampler': (['model.default_sample.sampler=euler'],
                ["unknown sampler 'euler'", 'use one of']),
    'noise_schedule': (['model.schedule.type=sigmoid'],
                       ["unknown noise schedule 'sigmoid'", 'cosine']),
    'sample_steps': (['model.default_sample.steps=0'],
                     ['steps must be a positive integer']),
    'ema_decay': (['model.ema.decay=1.5'], ['ema.decay must be in [0, 1]']),
    'max_iters': (['train_cfg.max_iters=0'],
                  ['max_iters must be a positive integer']),
    'cfg_options_syntax': (['train_cfg.max_iters'],
                           ['bad --cfg-options entry', 'KEY=VALUE']),
}


@pytest.mark.parametrize('case', sorted(CONFIG_CASES))
def test_bad_config(case, guarded):
    wd, before = guarded
    opts, words = CONFIG_CASES[case]
    code, err = run_train_inprocess(TEACHER, wd, *opts)
    assert_one_line_error(code, err, *words)
    assert_not_damaged(before, wd)


def test_config_file_missing(tmp_path):
    code, err = run_train_inprocess('configs/teacher/no_such_config.py',
                                    tmp_path / 'w')
    assert_one_line_error(code, err, 'config not found', 'no_such_config.py')


# ------------------------------------------------------------------ data
def test_missing_data_folder_real_cli(tmp_path):
    r = run_train(FOLDER_CFG, tmp_path / 'w',
                  f'train_dataloader.dataset.data_root={tmp_path / "nope"}')
    assert r.returncode == 2
    assert_one_line_error(r.returncode, r.stderr, 'data folder not found',
                          'data_root')


def test_no_class_folders(tmp_path, guarded):
    wd, before = guarded
    (tmp_path / 'flat').mkdir()
    _png(tmp_path / 'flat' / 'x.png')  # images but no class sub-folders
    code, err = run_train_inprocess(
        FOLDER_CFG, wd, f'train_dataloader.dataset.data_root={tmp_path}/flat')
    assert_one_line_error(code, err, 'no class folders', 'root/<class>')
    assert_not_damaged(before, wd)


def test_empty_class_folder(tmp_path, guarded):
    wd, before = guarded
    root = _folder(tmp_path / 'd')
    (root / 'c_empty').mkdir()
    (root / 'c_empty' / 'notes.txt').write_text('not an image')
    code, err = run_train_inprocess(
        FOLDER_CFG, wd, f'train_dataloader.dataset.data_root={root}')
    assert_one_line_error(code, err, 'c_empty', 'holds no images')
    assert_not_damaged(before, wd)


@pytest.mark.parametrize('workers', [0, 1])
def test_unreadable_image(tmp_path, guarded, workers):
    """Found during training (check_images=False): in the main process and
    in a DataLoader worker the message is the same one line."""
    wd, before = guarded
    root = _folder(tmp_path / 'd', n=1)
    (root / 'b' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    code, err = run_train_inprocess(
        FOLDER_CFG, wd, f'train_dataloader.dataset.data_root={root}',
        f'train_dataloader.num_workers={workers}',
        'train_dataloader.batch_size=3', 'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'unreadable image', 'broken.png',
                          'remove or replace')
    assert_not_damaged(before, wd)


def test_invalid_channels(tmp_path, guarded):
    wd, before = guarded
    root = _folder(tmp_path / 'd')
    code, err = run_train_inprocess(
        FOLDER_CFG, wd, f'train_dataloader.dataset.data_root={root}',
        'train_dataloader.dataset.channels=2')
    assert_one_line_error(code, err, 'channels must be 1', 'got 2')
    assert_not_damaged(before, wd)


def test_mixed_modes_and_sizes_are_converted(tmp_path):
    """RGBA, LA, P (with transparency), CMYK, 16-bit and 1-bit images, of
    different and non-square sizes, in one class folder: all converted to
    the configured channels and size, nothing crashes, and the pixel values
    are the expected ones (uniform images keep their grey level; a
    non-square image is centre-cropped)."""
    from mmdistill.datasets import ImageFolderDataset
    root = tmp_path / 'mixed'
    d = root / 'c0'
    d.mkdir(parents=True)
    Image.new('RGBA', (8, 8), (200, 200, 200, 10)).save(d / 'rgba.png')
    Image.new('LA', (16, 16), (200, 255)).save(d / 'la.png')
    p = Image.new('P', (8, 8), 0)
    p.putpalette([200, 200, 200] * 256)
    p.info['transparency'] = 0
    p.save(d / 'p.png')
    Image.new('CMYK', (12, 12), (0, 0, 0, 55)).save(d / 'cmyk.jpg',
                                                    quality=100)
    Image.new('1', (8, 8), 1).save(d / 'bw.png')
    # 24 x 8: black side bands, a 200-grey centre square
    wide = np.zeros((8, 24), np.uint8)
    wide[:, 8:16] = 200
    Image.fromarray(wide).save(d / 'wide.png')
    (root / 'c1').mkdir()
    Image.new('RGB', (4, 4), (200, 200, 200)).save(root / 'c1' / 'small.bmp')
    for channels in (1, 3):
        ds = ImageFolderDataset(str(root), image_size=8, channels=channels,
                                check_images=True)
        assert len(ds) == 7
        for i in range(len(ds)):
            item = ds[i]
            x = item['inputs']
            assert x.shape == (channels, 8, 8) and x.dtype == torch.float32
            name = os.path.basename(ds.items[i][0])
            expect = {'bw.png': 1.0}.get(name, 200 / 127.5 - 1)
            assert torch.allclose(x, torch.full_like(x, expect),
                                  atol=2 / 127.5), (name, x.min(), x.max())


# ----------------------------------------------------------- checkpoints
def test_load_from_missing(guarded, tmp_path):
    wd, before = guarded
    code, err = run_train_inprocess(TEACHER, wd,
                                    f'load_from={tmp_path}/none.pth')
    assert_one_line_error(code, err, 'checkpoint not found', 'none.pth')
    assert_not_damaged(before, wd)


def test_load_from_truncated(guarded, good_run, tmp_path):
    wd, before = guarded
    bad = tmp_path / 'cut.pth'
    bad.write_bytes(good_run[1].read_bytes()[:4096])
    code, err = run_train_inprocess(TEACHER, wd, f'load_from={bad}')
    assert_one_line_error(code, err, 'truncated or corrupt', 'cut.pth')
    assert_not_damaged(before, wd)


def test_load_from_wrong_architecture(guarded, good_run):
    wd, before = guarded
    code, err = run_train_inprocess(TEACHER, wd, f'load_from={good_run[1]}',
                                    'model.denoiser.base_channels=16')
    assert_one_line_error(code, err, 'does not match the configured '
                          'architecture', 'use the config')
    assert_not_damaged(before, wd)


def test_resume_missing_and_truncated(guarded, good_run, tmp_path):
    wd, before = guarded
    code, err = run_train_inprocess(
        TEACHER, wd, 'train_cfg.max_iters=3',
        extra=['--resume', str(tmp_path / 'gone.pth')])
    assert_one_line_error(code, err, 'checkpoint to resume not found')
    bad = tmp_path / 'cut.pth'
    bad.write_bytes(good_run[1].read_bytes()[:-100])
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=3',
                                    extra=['--resume', str(bad)])
    assert_one_line_error(code, err, 'cannot resume', 'truncated')
    assert_not_damaged(before, wd)


# ------------------------------------------------------------------ disk
def test_work_dir_not_writable_real_cli(tmp_path):
    blocker = tmp_path / 'file.txt'
    blocker.write_text('a regular file, not a folder')
    r = run_train(TEACHER, blocker / 'sub', 'train_cfg.max_iters=1')
    assert r.returncode == 2
    assert_one_line_error(r.returncode, r.stderr, 'cannot write',
                          'writable --work-dir')
    assert blocker.read_text() == 'a regular file, not a folder'


def test_disk_full_during_checkpoint(guarded, monkeypatch):
    """ENOSPC while a checkpoint is written: one-line error, the earlier
    checkpoint and the pointer are intact, no temporary file is left."""
    import errno

    import mmdistill.utils.checkpoint as ck
    wd, before = guarded
    real = ck.torch.save

    def full_disk(obj, f, *a, **k):
        real(obj, f, *a, **k)
        raise OSError(errno.ENOSPC, 'No space left on device', f.name)

    monkeypatch.setattr(ck.torch, 'save', full_disk)
    code, err = run_train_inprocess(TEACHER, wd, 'train_cfg.max_iters=3',
                                    extra=['--resume'])
    assert_one_line_error(code, err, 'no space left on device')
    assert_not_damaged(before, wd)
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]
    assert not (wd / 'iter_3.pth').exists()
