"""The inference API (init_model from a path, MMDistillInferencer), teachers
by reference (cfg_path) and checkpoints from http(s) URLs (a local
http.server)."""
import functools
import hashlib
import http.server
import os
import shutil
import threading

import pytest
import torch

from _reliability import ROOT, assert_one_line_error, run_train_inprocess

TEACHER = 'mmdistill::teacher/cfg_unet_digits.py'
TINY = ['model.denoiser.base_channels=8']


@pytest.fixture(scope='module')
def tiny_teacher(tmp_path_factory):
    """A width-8 digits teacher saved as a training-style checkpoint."""
    from mmdistill.apis import init_model
    d = tmp_path_factory.mktemp('tiny_teacher')
    torch.manual_seed(0)
    model = init_model(TEACHER, cfg_options=TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = d / 'teacher.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path, model


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Quiet.requests.append(self.path)
        return super().do_GET()


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """An http.server on 127.0.0.1 serving ``tmp_path/www`` in a thread;
    the torch hub cache in ``tmp_path/hub``."""
    www = tmp_path / 'www'
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    _Quiet.requests = []
    try:
        yield www, f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        torch.hub.set_dir(old)
        httpd.shutdown()
        httpd.server_close()


def _publish(src, www, stem):
    """Copy ``src`` to ``www/<stem>-<sha256[:8]>.pth``; returns the name."""
    sha = hashlib.sha256(open(src, 'rb').read()).hexdigest()
    name = f'{stem}-{sha[:8]}.pth'
    shutil.copy(src, www / name)
    return name


def test_init_model_takes_a_path_or_a_config(tiny_teacher):
    from mmdistill.apis import init_model
    from mmdistill.utils import UserError
    from mmdistill.utils.config import load_config
    path, ref = tiny_teacher
    a = init_model(TEACHER, str(path), cfg_options=TINY)
    cfg = load_config(os.path.join(ROOT, 'configs/teacher/'
                                   'cfg_unet_digits.py'), TINY)
    b = init_model(cfg, str(path))
    c = init_model(os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py'),
                   str(path), cfg_options={'model.denoiser.base_channels': 8})
    for m in (a, b, c):
        assert not m.training
        for k, v in ref.state_dict().items():
            assert torch.equal(m.state_dict()[k], v), k
    with pytest.raises(UserError, match='mmdistill::teacher/nope.py not '
                       'found'):
        init_model('mmdistill::teacher/nope.py')


def test_inferencer_samples_fixed_seeds(tiny_teacher, tmp_path):
    from mmdistill.apis import MMDistillInferencer
    from mmdistill.utils import UserError
    path, _ = tiny_teacher
    inf = MMDistillInferencer(TEACHER, str(path), cfg_options=TINY)
    out = tmp_path / 'grid.png'
    imgs = inf([0, 1, 2], steps=2, guidance=1.0, seed=3, out_file=str(out))
    assert imgs.shape == (3, 1, 8, 8)
    assert imgs.min() >= -1 and imgs.max() <= 1
    # image i depends on seed + i only, not on the batch (up to float
    # rounding of another batch size)
    one = inf([1], steps=2, guidance=1.0, seed=4)
    assert torch.allclose(one[0], imgs[1], atol=1e-5)
    assert torch.equal(inf([0, 1, 2], steps=2, guidance=1.0, seed=3), imgs)
    from PIL import Image
    # 3 images in one row, 8x8 drawn at 32 px, 1 px padding
    assert Image.open(out).size == (3 * 33 + 1, 33 + 1)
    assert inf(steps=1).shape[0] == 10  # default: one image per class
    with pytest.raises(UserError, match='label 10 is outside'):
        inf([10])
    with pytest.raises(UserError, match='steps must be a positive'):
        inf([0], steps=0)
    with pytest.raises(UserError, match='guidance must be a finite'):
        inf([0], guidance=float('nan'))


def test_inferencer_loads_a_progressive_student(tmp_path):
    """A distiller config takes a student file (no teacher on disk); the
    default steps are the student's N."""
    from mmdistill.apis import MMDistillInferencer, init_model
    opts = ['model.student.base_channels=8', 'model.teacher_ckpt=None',
            'model.num_steps=2']
    cfg_path = 'mmdistill::progressive/progressive_digits_32to1.py'
    torch.manual_seed(1)
    model = init_model(cfg_path, cfg_options=opts)
    state = {k: v for k, v in model.state_dict().items()
             if k.startswith('net.') or k == 'num_steps'}
    torch.save(dict(state_dict=state), tmp_path / 'student_2step.pth')
    inf = MMDistillInferencer(cfg_path, str(tmp_path / 'student_2step.pth'),
                              cfg_options=opts[:1])
    assert int(inf.model.num_steps) == 2
    imgs = inf([3, 4], guidance=2.0, seed=0)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    noise = torch.stack([torch.randn(1, 8, 8, generator=g) for g in gens])
    ref = model.sample(torch.tensor([3, 4]), noise=noise, steps=2,
                       guidance=2.0, generator=gens)
    assert torch.allclose(imgs, ref, atol=1e-6)


def test_checkpoint_url_downloads_once_into_the_hub_cache(
        tiny_teacher, server):
    from mmdistill.apis import MMDistillInferencer
    path, ref = tiny_teacher
    www, base = server
    name = _publish(path, www, 'teacher')
    url = f'{base}/{name}'
    a = MMDistillInferencer(TEACHER, url, cfg_options=TINY)
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', name)
    assert os.path.isfile(cached)
    b = MMDistillInferencer(TEACHER, url, cfg_options=TINY)
    assert _Quiet.requests == [f'/{name}']  # the second came from the cache
    for m in (a.model, b.model):
        assert torch.equal(m.state_dict()['net.conv_in.weight'],
                           ref.state_dict()['net.conv_in.weight'])


def test_download_failures_are_one_line_errors(tiny_teacher, server):
    from mmdistill.utils import UserError, load_state_dict
    path, _ = tiny_teacher
    www, base = server
    with pytest.raises(UserError) as e:
        load_state_dict(f'{base}/missing.pth')
    msg = str(e.value)
    assert '\n' not in msg and f'{base}/missing.pth' in msg
    assert 'HTTP Error 404' in msg and 'local path' in msg
    # the hash in the name does not match the content
    shutil.copy(path, www / 'teacher-00000000.pth')
    with pytest.raises(UserError, match='SHA-256 does not match'):
        load_state_dict(f'{base}/teacher-00000000.pth')
    assert not os.path.exists(os.path.join(
        torch.hub.get_dir(), 'checkpoints', 'teacher-00000000.pth'))


def test_teacher_by_reference_and_url(tiny_teacher, server):
    """teacher=dict(cfg_path=...) builds the referenced config's model with
    the overrides; teacher_ckpt may be an http(s) URL."""
    from mmdistill.apis import init_model
    path, ref = tiny_teacher
    www, base = server
    name = _publish(path, www, 'teacher')
    model = init_model('mmdistill::guided_distill/guided_distill_digits.py',
                       cfg_options={
                           'model.teacher': dict(
                               _delete_=True, cfg_path=TEACHER,
                               denoiser=dict(base_channels=8)),
                           'model.teacher_ckpt': f'{base}/{name}'})
    teacher = model.teacher
    assert type(teacher).__name__ == 'CFGDiffusion'
    assert teacher.net.conv_in.out_channels == 8
    # the teacher's EMA weights are those of the file
    src = ref.state_dict()
    for k, v in teacher.net.state_dict().items():
        assert torch.equal(v, src['net_ema.' + k]), k
    # the student starts as a copy of the teacher
    assert torch.equal(model.net.conv_in.weight, teacher.net.conv_in.weight)


def test_load_from_url_and_cli_error(tiny_teacher, server, tmp_path):
    path, _ = tiny_teacher
    www, base = server
    name = _publish(path, www, 'teacher')
    code, err = run_train_inprocess(
        'configs/teacher/cfg_unet_digits.py', tmp_path / 'w',
        f'load_from={base}/{name}', 'train_cfg.max_iters=1')
    assert code == 0, err[-3000:]
    code, err = run_train_inprocess(
        'configs/guided_distill/guided_distill_digits.py', tmp_path / 'w2',
        f'model.teacher_ckpt={base}/nothing-here.pth',
        'train_cfg.max_iters=1')
    assert_one_line_error(code, err, 'cannot download checkpoint',
                          f'{base}/nothing-here.pth', 'local path')
