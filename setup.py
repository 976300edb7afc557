from setuptools import find_packages, setup

setup(
    name='mmdistill',
    version='0.1.0',
    description='Distillation of classifier-free-guided diffusion models '
    '(guidance distillation, progressive distillation, MGD3) as an mmagic '
    'plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdistill', 'mmdistill.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1', 'mmengine>=0.10.4', 'mmcv-lite>=2.0.0,<2.2.0',
        'diffusers>=0.30', 'safetensors', 'scikit-learn', 'scipy', 'tqdm',
        'matplotlib'
    ],
    # mmagic 1.2.0 is installed with --no-deps (see the Makefile): its
    # dependency list pulls torchvision, whose PyPI build breaks a CPU torch.
    extras_require=dict(tests=['pytest'], text=['transformers']),
    license='Apache-2.0',
)
