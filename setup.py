"""mmdistill's packaging.

The requirements come from ``requirements/*.txt`` (runtime, tests, optional)
and the version from ``mmdistill/version.py``. The configs, the tools, the
model index and the shipped checkpoints travel inside the package as
``mmdistill/.mim/`` (links to the checkout in an editable install, copies in
a wheel or sdist), the layout ``mim`` and mmengine's ``mmdistill::`` config
prefix read.
"""
import os
import os.path as osp
import re
import shutil
import sys
import warnings
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
VERSION_FILE = osp.join('mmdistill', 'version.py')
#: what goes into mmdistill/.mim
MIM_ITEMS = ('configs', 'tools', 'model-index.yml', 'checkpoints')


def get_version():
    """``__version__`` of mmdistill/version.py, read without importing the
    package (its dependencies may not be installed yet)."""
    scope = {}
    with open(osp.join(ROOT, VERSION_FILE), encoding='utf-8') as f:
        exec(compile(f.read(), VERSION_FILE, 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname):
    """The requirement lines of a requirements file, following ``-r``.

    Args:
        fname (str): path relative to the repository root.

    Returns:
        list[str]: requirement specifiers with their versions.
    """
    out = []
    with open(osp.join(ROOT, fname), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                nested = osp.join(osp.dirname(fname), line[3:].strip())
                out += parse_requirements(nested)
            else:
                out.append(line)
    return out


def shipped_checkpoints():
    """The checkpoints the model index names (``Weights: checkpoints/...``
    in configs/*/metafile.yml; a file, or a diffusers folder): only these
    travel with the package, not whatever else a user keeps in
    checkpoints/."""
    names = set()
    for folder in sorted(os.listdir(osp.join(ROOT, 'configs'))):
        meta = osp.join(ROOT, 'configs', folder, 'metafile.yml')
        if osp.isfile(meta):
            with open(meta, encoding='utf-8') as f:
                names.update(re.findall(r'Weights:\s*(checkpoints/\S+)',
                                        f.read()))
    return sorted(n for n in names if osp.exists(osp.join(ROOT, n)))


def _remove(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def add_mim_extension():
    """Put configs, tools, model index and shipped checkpoints into
    ``mmdistill/.mim`` (the OpenMMLab layout).

    An editable install (``develop`` / ``editable_wheel``) gets relative
    symbolic links to the checkout; a wheel or sdist gets copies. Other
    setup.py commands leave the folder alone.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        return
    make_mim_folder(mode)


def make_mim_folder(mode):
    """Build ``mmdistill/.mim`` by ``mode`` ('symlink' or 'copy').

    Args:
        mode (str): ``'symlink'`` links each item (falls back to copying
            where links are not allowed), ``'copy'`` copies it.
    """
    mim = osp.join(ROOT, 'mmdistill', '.mim')
    os.makedirs(mim, exist_ok=True)
    for item in MIM_ITEMS:
        src, dst = osp.join(ROOT, item), osp.join(mim, item)
        if not osp.exists(src):
            continue
        _remove(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim), dst)
                continue
            except OSError:
                warnings.warn(f'cannot link {dst}; copying {src} instead')
        if item == 'checkpoints':
            os.makedirs(dst)
            for name in shipped_checkpoints():
                if osp.isdir(osp.join(ROOT, name)):
                    shutil.copytree(osp.join(ROOT, name), osp.join(mim, name))
                else:
                    shutil.copyfile(osp.join(ROOT, name),
                                    osp.join(mim, name))
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


def readme():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdistill',
        version=get_version(),
        description='Distillation of classifier-free-guided diffusion '
        'models (guidance distillation, progressive distillation, MGD3) as '
        'an mmagic plugin',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='diffusion, distillation, classifier-free guidance, '
        'progressive distillation, mmagic, OpenMMLab',
        packages=find_packages(include=['mmdistill', 'mmdistill.*']),
        include_package_data=True,
        python_requires='>=3.9',
        # torch>=2.1 admits the tested 2.13.0 (pinned in requirements.txt).
        # mmagic is not a dependency: its registries are used as parents
        # when it imports; install it with --no-deps (see the Makefile),
        # its dependency list pulls torchvision, whose PyPI build breaks a
        # CPU torch.
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require=dict(
            tests=parse_requirements('requirements/tests.txt'),
            tensorboard=['tensorboard'],
            text=['transformers'],
            lora=['peft'],
            all=parse_requirements('requirements/tests.txt') +
            parse_requirements('requirements/optional.txt'),
        ),
        classifiers=[
            'Development Status :: 3 - Alpha',
            'Intended Audience :: Science/Research',
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: OS Independent',
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        license='Apache-2.0',
        zip_safe=False,
    )
