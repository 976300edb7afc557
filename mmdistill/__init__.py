"""mmdistill: distillation of classifier-free-guided diffusion models, as an
mmagic plugin (registries are children of ``mmagic.registry``)."""
__version__ = '0.1.0'


def register_all_modules():
    """Import every sub-package so its components are registered."""
    from . import datasets, engine, models  # noqa: F401
    for optional in ('evaluation', 'synthesis', 'engine.hooks'):
        __import__(f'mmdistill.{optional}')


register_all_modules()
