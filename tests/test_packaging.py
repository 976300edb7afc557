"""Packaging: one version, requirements split as OpenMMLab projects keep
them, mmagic optional, shipped files found through the package, and
mmengine's ``package::`` config prefixes without ``pkg_resources``."""
import os
import runpy
import setuptools
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

import mmdistill
from mmdistill.utils import package as pkg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def setup_kwargs():
    """The keyword arguments setup.py passes to ``setup()`` (run as a
    script with ``setup`` captured, so nothing is built)."""
    captured = {}
    original, argv = setuptools.setup, sys.argv
    setuptools.setup = lambda **kw: captured.update(kw)
    sys.argv = ['setup.py', '--name']  # no build command: .mim untouched
    try:
        runpy.run_path(os.path.join(ROOT, 'setup.py'), run_name='__main__')
    finally:
        setuptools.setup, sys.argv = original, argv
    return captured


def _setup_module():
    return runpy.run_path(os.path.join(ROOT, 'setup.py'))


def test_one_version(setup_kwargs):
    from mmdistill.version import __version__, version_info
    assert mmdistill.__version__ == __version__ == setup_kwargs['version']
    assert version_info == tuple(int(p) for p in __version__.split('.'))


def test_requirements_split_and_pins(setup_kwargs):
    install = {Requirement(r).name: Requirement(r)
               for r in setup_kwargs['install_requires']}
    assert 'mmagic' not in install  # optional: see mmdistill/registry.py
    for name in ('torch', 'mmengine', 'mmcv-lite', 'diffusers',
                 'safetensors', 'scikit-learn', 'numpy', 'tqdm'):
        assert name in install, name
    # the top-level file: the split files plus the tested pins, which the
    # ranges of setup.py admit
    lines = [ln.split('#')[0].strip() for ln in
             open(os.path.join(ROOT, 'requirements.txt'))]
    lines = [ln for ln in lines if ln]
    for part in ('runtime', 'tests', 'optional'):
        assert f'-r requirements/{part}.txt' in lines
    pins = {Requirement(ln).name: Requirement(ln) for ln in lines
            if not ln.startswith('-r')}
    assert str(pins['torch'].specifier) == '==2.13.0'
    for name, pin in pins.items():
        version = str(pin.specifier).lstrip('=')
        assert install[name].specifier.contains(version), (name, version)
    extras = setup_kwargs['extras_require']
    assert {'tests', 'tensorboard', 'text'} <= set(extras)
    tests = {Requirement(r).name for r in extras['tests']}
    assert {'pytest', 'flake8', 'isort'} <= tests
    assert extras['text'] == ['transformers']
    assert extras['tensorboard'] == ['tensorboard']


def test_wheel_ships_the_indexed_checkpoints():
    names = _setup_module()['shipped_checkpoints']()
    folder = os.path.join(ROOT, 'checkpoints')
    assert names == sorted('checkpoints/' + f for f in os.listdir(folder)
                           if f.endswith('.pth') or os.path.isfile(
                               os.path.join(folder, f, 'model_index.json')))
    assert 'checkpoints/ddpm-unet2d-digits' in names  # a diffusers folder


def test_import_without_mmagic():
    """With mmagic absent the registries hang under mmengine's root ones
    and every component still builds."""
    code = (
        'import sys\n'
        'sys.modules["mmagic"] = None  # as if not installed\n'
        'import mmdistill\n'
        'from mmdistill import registry\n'
        'import mmengine.registry as R\n'
        'assert not registry.WITH_MMAGIC\n'
        'assert registry.MODELS.parent is R.MODELS\n'
        'assert registry.EVALUATOR.parent is R.EVALUATOR\n'
        'm = registry.MODELS.build(dict(type="CFGDiffusion", num_classes=10,'
        ' image_shape=(1, 8, 8), denoiser=dict(type="CompactUNet",'
        ' base_channels=8, num_classes=10)))\n'
        'print(type(m).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT,
                                  OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'CFGDiffusion'


def test_registries_are_mmagic_children_where_it_imports():
    pytest.importorskip('mmagic.registry')
    import mmagic.registry as R

    from mmdistill import registry
    assert registry.WITH_MMAGIC
    assert registry.MODELS.parent is R.MODELS
    assert registry.EVALUATOR.parent is R.EVALUATORS


def test_resolve_package_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher = 'checkpoints/digits_teacher.pth'
    # from another folder: the checkout
    assert pkg.resolve_package_path(teacher) == os.path.join(ROOT, teacher)
    # no checkout: the installed package's .mim folder
    mim = tmp_path / 'site' / 'mmdistill' / '.mim'
    (mim / 'checkpoints').mkdir(parents=True)
    (mim / 'checkpoints' / 'digits_teacher.pth').write_bytes(b'x')
    monkeypatch.setattr(pkg, 'checkout_dir', lambda: None)
    monkeypatch.setattr(pkg, 'mim_dir', lambda: str(mim))
    assert pkg.resolve_package_path(teacher) == str(
        mim / 'checkpoints' / 'digits_teacher.pth')
    # a file of the working folder wins; unknown and absolute paths stay
    (tmp_path / 'checkpoints').mkdir()
    (tmp_path / teacher).write_bytes(b'y')
    assert pkg.resolve_package_path(teacher) == teacher
    assert pkg.resolve_package_path('nope.pth') == 'nope.pth'
    assert pkg.resolve_package_path('/abs/x.pth') == '/abs/x.pth'


def test_shipped_teacher_loads_from_another_folder(tmp_path, monkeypatch):
    from mmdistill.utils import load_state_dict
    monkeypatch.chdir(tmp_path)
    state = load_state_dict('checkpoints/digits_teacher.pth')
    assert any(k.startswith('net') for k in state)


def test_mmengine_package_lookup_without_pkg_resources():
    from mmengine.config import utils as config_utils
    assert config_utils.MODULE2PACKAGE['mmdistill'] == 'mmdistill'
    from mmdistill import compat
    assert compat.get_installed_path('mmdistill') == pkg.package_dir()
    assert compat.is_installed('mmdistill')
    assert not compat.is_installed('surely_not_a_package_0x')
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import mmengine.config.config as config_module
        assert config_module.get_installed_path is compat.get_installed_path
        assert config_module.is_installed is compat.is_installed


def _mim_configs():
    """mmdistill/.mim/configs as an editable install lays it (links);
    created here when missing, the way ``pip install -e .`` does."""
    if not os.path.isdir(os.path.join(pkg.mim_dir(), 'configs')):
        _setup_module()['make_mim_folder']('symlink')
    return os.path.join(pkg.mim_dir(), 'configs')


def test_mmdistill_and_mmagic_config_prefixes(tmp_path):
    from mmengine.config import Config
    _mim_configs()
    child = tmp_path / 'child.py'
    child.write_text("_base_ = 'mmdistill::teacher/cfg_unet_digits.py'\n"
                     'train_cfg = dict(max_iters=3)\n')
    cfg = Config.fromfile(str(child))
    assert cfg.model.type == 'CFGDiffusion'
    assert cfg.train_cfg.max_iters == 3
    assert cfg.runner_type == 'DistillRunner'
    # a _base_ file of the package by its configs/ path
    child.write_text("_base_ = 'mmdistill::_base_/default_runtime.py'\n")
    assert Config.fromfile(str(child)).default_scope == 'mmdistill'
    from mmdistill.compat import get_installed_path
    try:
        mmagic_dir = get_installed_path('mmagic')
    except Exception:  # noqa: BLE001
        mmagic_dir = None
    if mmagic_dir is None or not os.path.isdir(
            os.path.join(mmagic_dir, '.mim', 'configs')):
        pytest.skip('mmagic with its .mim/configs is not installed')
    child.write_text("_base_ = 'mmagic::_base_/default_runtime.py'\n")
    assert Config.fromfile(str(child)).default_scope == 'mmagic'


def test_python_m_mmdistill_finds_tools_and_configs():
    from mmdistill.__main__ import find_config, main
    found = find_config('guided_distill_digits.py')
    assert found == os.path.join(ROOT, 'configs', 'guided_distill',
                                 'guided_distill_digits.py')
    assert find_config('mmdistill::teacher/cfg_unet_digits.py') == \
        os.path.join(ROOT, 'configs', 'teacher', 'cfg_unet_digits.py')
    assert find_config('guided_distill_digits') == found
    assert find_config('digits.py') is None  # a _base_ file: not by name
    assert find_config('no_such_config.py') is None
    assert main(['no_such_tool']) == 2
