"""Registries of mmdistill: children of mmagic's, scope ``mmdistill``.

mmagic is optional. Where it is installed and ``mmagic.registry`` imports,
every registry here is a child of mmagic's (so mmagic's own components stay
reachable from configs with the ``mmagic.`` prefix where mmagic imports
fully); without mmagic the parents are mmengine's root registries and
``import mmdistill`` works the same. Only ``mmagic.registry`` is imported from
mmagic: its models, evaluation, utils and datasets packages do not import on
a modern stack (compiled mmcv ops, NumPy 2, diffusers drift). A component
registered here is built from a config with ``default_scope='mmdistill'``.

Registration follows mmagic: each registry names the sub-packages that hold
its components (``locations``, imported on the first look-up), and
:func:`mmdistill.register_all_modules` imports them all at once and sets
the default scope (entry points call it).
"""
import warnings
from types import ModuleType
from typing import Optional

import mmengine.registry as _mmengine_registry
from mmengine.registry import Registry


def _mmagic_registry() -> Optional[ModuleType]:
    """``mmagic.registry`` when mmagic is installed and imports, else None
    (mmdistill then hangs its registries under mmengine's root ones)."""
    try:
        import mmagic.registry as registry
    except ImportError:
        return None
    except Exception as e:  # noqa: BLE001  (e.g. mmagic's mmcv version guard)
        warnings.warn(f'mmagic is installed but does not import '
                      f'({type(e).__name__}: {e}); mmdistill uses '
                      "mmengine's registries as parents instead")
        return None
    return registry


#: the module whose registries are the parents: ``mmagic.registry`` where
#: mmagic imports, else ``mmengine.registry``.
PARENT_REGISTRY = _mmagic_registry() or _mmengine_registry
#: True when the parents are mmagic's.
WITH_MMAGIC = PARENT_REGISTRY is not _mmengine_registry

_SCOPE = 'mmdistill'
#: the prefix of config paths inside the package: 'mmdistill::teacher/x.py'
CONFIG_PREFIX = 'mmdistill::'


def resolve_config_path(path: str) -> str:
    """The file of a config path: ``'mmdistill::X'`` is ``X`` under the
    installed package's ``mmdistill/.mim/configs`` when present, else under
    the repository's ``configs``; any other path is returned unchanged.

    Raises:
        FileNotFoundError: a ``mmdistill::`` config that is in neither.
    """
    import os.path as osp
    if not path.startswith(CONFIG_PREFIX):
        return path
    rel = path[len(CONFIG_PREFIX):].lstrip('/')
    pkg = osp.dirname(osp.abspath(__file__))
    roots = [osp.join(pkg, '.mim', 'configs'),
             osp.join(osp.dirname(pkg), 'configs')]
    for root in roots:
        if osp.isfile(osp.join(root, rel)):
            return osp.join(root, rel)
    raise FileNotFoundError(
        f'config {path} not found (looked for {rel} in the package\'s '
        '.mim/configs and in the repository\'s configs/); give an '
        'existing mmdistill::<folder>/<name>.py or a file path')


def build_model_with_cfg_path(cfg, registry, default_args=None):
    """mmengine's ``build_model_from_cfg`` that also takes a model by
    reference, as mmrazor does: ``dict(cfg_path='mmdistill::teacher/
    cfg_unet_digits.py', **overrides)`` builds the ``model`` of that config
    with ``overrides`` merged in (e.g. ``ema=None``)."""
    from mmengine.config import Config, ConfigDict
    from mmengine.registry import build_model_from_cfg
    if isinstance(cfg, (dict, ConfigDict)) and 'cfg_path' in cfg:
        cfg = dict(cfg)
        path = resolve_config_path(str(cfg.pop('cfg_path')))
        import os.path as osp
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'model config {path} (cfg_path) not found; give an '
                'existing config file or mmdistill::<folder>/<name>.py')
        model = Config.fromfile(path).get('model')
        if model is None:
            raise ValueError(f'cfg_path {path} has no `model` entry')
        merged = Config(dict(model=model))
        merged.merge_from_dict(dict(model=cfg))
        cfg = merged.model
    return build_model_from_cfg(cfg, registry, default_args)


#: mmengine's names of the registries that mmagic spells otherwise
_MMAGIC_NAMES = dict(EVALUATOR='EVALUATORS')


def _child(name: str, parent: str, *subpkgs: str,
           build_func=None) -> Registry:
    """A child registry whose components live in the given sub-packages
    (imported on the first look-up).

    Args:
        name (str): the registry's name.
        parent (str): mmengine's name of the parent registry (looked up in
            ``PARENT_REGISTRY``).
        *subpkgs (str): sub-packages of mmdistill holding its components.
        build_func (callable, optional): the registry's build function
            (default: the parent's).

    Returns:
        Registry: the child registry, scope ``mmdistill``.
    """
    if WITH_MMAGIC:
        parent = _MMAGIC_NAMES.get(parent, parent)
    return Registry(name, parent=getattr(PARENT_REGISTRY, parent),
                    scope=_SCOPE, build_func=build_func,
                    locations=[f'mmdistill.{p}' for p in subpkgs])


MODELS = _child('model', 'MODELS', 'models', 'evaluation',
                build_func=build_model_with_cfg_path)
MODEL_WRAPPERS = _child('model_wrapper', 'MODEL_WRAPPERS', 'models')
DATASETS = _child('dataset', 'DATASETS', 'datasets', 'synthesis')
DATA_SAMPLERS = _child('data sampler', 'DATA_SAMPLERS', 'datasets')
TRANSFORMS = _child('transform', 'TRANSFORMS', 'datasets')
METRICS = _child('metric', 'METRICS', 'evaluation')
EVALUATOR = _child('evaluator', 'EVALUATOR', 'evaluation')
HOOKS = _child('hook', 'HOOKS', 'engine')
LOOPS = _child('loop', 'LOOPS', 'engine')
OPTIM_WRAPPERS = _child('optim_wrapper', 'OPTIM_WRAPPERS', 'engine')
PARAM_SCHEDULERS = _child('parameter scheduler', 'PARAM_SCHEDULERS',
                          'engine')
OPTIMIZERS = _child('optimizer', 'OPTIMIZERS', 'engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    'OPTIM_WRAPPER_CONSTRUCTORS',
                                    'engine')
LOG_PROCESSORS = _child('log_processor', 'LOG_PROCESSORS', 'engine')
WEIGHT_INITIALIZERS = _child('weight initializer',
                             'WEIGHT_INITIALIZERS', 'models')
TASK_UTILS = _child('task util', 'TASK_UTILS', 'models', 'synthesis')
RUNNERS = _child('runner', 'RUNNERS', 'engine')
VISBACKENDS = _child('vis_backend', 'VISBACKENDS', 'engine')
VISUALIZERS = _child('visualizer', 'VISUALIZERS', 'engine')
#: MGD3 components (mode discovery, generators, evaluation classifiers) are
#: task utilities in OpenMMLab's sense: the child of the parent TASK_UTILS (a
#: registry has one child per scope, so this is the same registry).
SYNTHESIS = TASK_UTILS
