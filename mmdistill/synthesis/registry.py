"""Registry of the dataset-synthesis components (mode discovery, generator
adapters, evaluation classifiers). Configs name them by ``type``."""
from mmengine.registry import Registry

SYNTHESIS = Registry('synthesis component', scope='mmdistill')


def build(cfg, **kwargs):
    """Build a component from ``dict(type=..., ...)`` (objects pass)."""
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    if kind is None:
        raise ValueError(f'component config needs a type: {cfg}')
    cls = SYNTHESIS.get(kind)
    if cls is None:
        raise KeyError(f'{kind} is not in the synthesis component registry')
    cfg.update(kwargs)
    return cls(**cfg)
