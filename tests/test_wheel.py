"""Acceptance: the package as a user installs it. A wheel built from the
source tree is installed into a fresh virtual environment, and from a folder
with no checkout on ``sys.path``: ``import mmdistill`` comes from the wheel,
the shipped teacher loads through the package, ``mmdistill::`` configs
resolve, and a few iterations of the packaged ``guided_distill_digits``
config train with ``python -m mmdistill train`` (what ``mim train mmdistill
guided_distill_digits.py`` runs; ``mim`` itself when openmim is installed).

The environment reuses the installed dependencies of the running
interpreter (its site-packages on the path through a ``.pth`` file, which
does not run that environment's editable-install hooks); mmdistill itself
is only the wheel's.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def _source_files():
    out = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
        capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip('not a git checkout: cannot list the source files')
    return [f for f in out.stdout.splitlines()
            if os.path.isfile(os.path.join(ROOT, f))]


def _run(cmd, cwd, env=None, timeout=600):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, (cmd, out.stdout[-2000:], out.stderr[-3000:])
    return out.stdout


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(python of the fresh environment, its environment variables, a
    working folder outside the checkout)."""
    base = tmp_path_factory.mktemp('wheel')
    src = base / 'src'
    for f in _source_files():  # a clean copy: the build writes .mim, build/
        os.makedirs(os.path.dirname(src / f), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), src / f)
    dist = base / 'dist'
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
          '--no-build-isolation', '-q', '-w', str(dist), str(src)], cwd=base)
    wheels = glob.glob(str(dist / 'mmdistill-*.whl'))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    for f in ('mmdistill/.mim/model-index.yml',
              'mmdistill/.mim/configs/guided_distill/guided_distill_digits.py',
              'mmdistill/.mim/configs/_base_/default_runtime.py',
              'mmdistill/.mim/configs/teacher/metafile.yml',
              'mmdistill/.mim/tools/train.py',
              'mmdistill/.mim/checkpoints/digits_teacher.pth',
              'mmdistill/version.py'):
        assert f in names, f
    assert not [n for n in names if n.startswith('tests/')]

    venv = base / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)],
         cwd=base)
    py = str(venv / 'bin' / 'python')
    site = _run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()'
                 '["purelib"])'], cwd=base).strip()
    deps = sysconfig.get_paths()['purelib']
    with open(os.path.join(site, '_mmdistill_test_deps.pth'), 'w') as f:
        f.write(deps + '\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
    env.update(OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    _run([py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index',
          wheels[0]], cwd=base, env=env)
    work = base / 'elsewhere'
    work.mkdir()
    return py, env, work, site


def test_import_comes_from_the_wheel(installed):
    py, env, work, site = installed
    out = _run([py, '-c', 'import mmdistill, sys; '
                'print(mmdistill.__file__); print(mmdistill.__version__); '
                'print(any(p.rstrip("/") == %r for p in sys.path))' % ROOT],
               cwd=work, env=env)
    path, version, on_path = out.split()
    assert path.startswith(site), path
    assert on_path == 'False'
    from mmdistill import __version__
    assert version == __version__


def test_shipped_teacher_and_configs_through_the_package(installed):
    py, env, work, site = installed
    code = (
        'import os\n'
        'from mmengine.config import Config\n'
        'import mmdistill\n'
        'from mmdistill.apis import init_model\n'
        'from mmdistill.utils import resolve_package_path\n'
        'p = resolve_package_path("checkpoints/digits_teacher.pth")\n'
        'assert p.startswith(os.path.dirname(mmdistill.__file__)), p\n'
        'open("child.py", "w").write("_base_ = \'mmdistill::teacher/'
        'cfg_unet_digits.py\'\\n")\n'
        'cfg = Config.fromfile("child.py")\n'
        'model = init_model(cfg, "checkpoints/digits_teacher.pth")\n'
        'print(type(model).__name__, cfg.runner_type)\n')
    out = _run([py, '-c', code], cwd=work, env=env)
    assert out.split()[-2:] == ['CFGDiffusion', 'DistillRunner']


def test_train_packaged_guided_distill_digits(installed):
    py, env, work, site = installed
    opts = ['train_cfg.max_iters=3', 'train_dataloader.batch_size=16',
            'train_dataloader.num_workers=0',
            'default_hooks.checkpoint.interval=3',
            'default_hooks.logger.interval=1', 'log_level=WARNING']
    # what `mim train mmdistill guided_distill_digits.py` runs: the
    # package's .mim/tools/train.py on its .mim/configs file
    _run([py, '-m', 'mmdistill', 'train', 'guided_distill_digits.py',
          '--work-dir', 'wd', '--cfg-options', *opts], cwd=work, env=env)
    assert (work / 'wd' / 'iter_3.pth').is_file()
    # the teacher (model.teacher_ckpt=checkpoints/digits_teacher.pth) came
    # from the package: there is no checkpoints/ folder here
    assert not (work / 'checkpoints').exists()
