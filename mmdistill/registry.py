"""Registries of mmdistill: children of mmagic's, scope ``mmdistill``.

Only ``mmagic.registry`` is imported from mmagic: its models, evaluation, utils
and datasets packages do not import on a modern stack (compiled mmcv ops,
NumPy 2, diffusers drift). A component registered here is built from a config
with ``default_scope='mmdistill'``; mmagic's own components stay reachable with
the ``mmagic.`` prefix where mmagic imports fully.

Registration follows mmagic: each registry names the sub-packages that hold
its components (``locations``, imported on the first look-up), and
:func:`mmdistill.register_all_modules` imports them all at once and sets
the default scope (entry points call it).
"""
from mmengine.registry import Registry

from mmagic.registry import DATA_SAMPLERS as MMAGIC_DATA_SAMPLERS
from mmagic.registry import LOG_PROCESSORS as MMAGIC_LOG_PROCESSORS
from mmagic.registry import OPTIMIZERS as MMAGIC_OPTIMIZERS
from mmagic.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMAGIC_OPTIM_WRAPPER_CONSTRUCTORS
from mmagic.registry import WEIGHT_INITIALIZERS as MMAGIC_WEIGHT_INITIALIZERS
from mmagic.registry import TASK_UTILS as MMAGIC_TASK_UTILS
from mmagic.registry import DATASETS as MMAGIC_DATASETS
from mmagic.registry import EVALUATORS as MMAGIC_EVALUATOR
from mmagic.registry import HOOKS as MMAGIC_HOOKS
from mmagic.registry import LOOPS as MMAGIC_LOOPS
from mmagic.registry import METRICS as MMAGIC_METRICS
from mmagic.registry import MODEL_WRAPPERS as MMAGIC_MODEL_WRAPPERS
from mmagic.registry import MODELS as MMAGIC_MODELS
from mmagic.registry import OPTIM_WRAPPERS as MMAGIC_OPTIM_WRAPPERS
from mmagic.registry import PARAM_SCHEDULERS as MMAGIC_PARAM_SCHEDULERS
from mmagic.registry import RUNNERS as MMAGIC_RUNNERS
from mmagic.registry import TRANSFORMS as MMAGIC_TRANSFORMS
from mmagic.registry import VISBACKENDS as MMAGIC_VISBACKENDS
from mmagic.registry import VISUALIZERS as MMAGIC_VISUALIZERS

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


def _child(name: str, parent: Registry, *subpkgs: str) -> Registry:
    """A child registry of mmagic's whose components live in the given
    sub-packages (imported on the first look-up)."""
    return Registry(name, parent=parent, scope=_SCOPE,
                    locations=[f'mmdistill.{p}' for p in subpkgs])


MODELS = Registry('model', parent=MMAGIC_MODELS, scope=_SCOPE,
                  locations=['mmdistill.models', 'mmdistill.evaluation'],
                  build_func=build_model_with_cfg_path)
MODEL_WRAPPERS = _child('model_wrapper', MMAGIC_MODEL_WRAPPERS, 'models')
DATASETS = _child('dataset', MMAGIC_DATASETS, 'datasets', 'synthesis')
DATA_SAMPLERS = _child('data sampler', MMAGIC_DATA_SAMPLERS, 'datasets')
TRANSFORMS = _child('transform', MMAGIC_TRANSFORMS, 'datasets')
METRICS = _child('metric', MMAGIC_METRICS, 'evaluation')
EVALUATOR = _child('evaluator', MMAGIC_EVALUATOR, 'evaluation')
HOOKS = _child('hook', MMAGIC_HOOKS, 'engine')
LOOPS = _child('loop', MMAGIC_LOOPS, 'engine')
OPTIM_WRAPPERS = _child('optim_wrapper', MMAGIC_OPTIM_WRAPPERS, 'engine')
PARAM_SCHEDULERS = _child('parameter scheduler', MMAGIC_PARAM_SCHEDULERS,
                          'engine')
OPTIMIZERS = _child('optimizer', MMAGIC_OPTIMIZERS, 'engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMAGIC_OPTIM_WRAPPER_CONSTRUCTORS,
                                    'engine')
LOG_PROCESSORS = _child('log_processor', MMAGIC_LOG_PROCESSORS, 'engine')
WEIGHT_INITIALIZERS = _child('weight initializer',
                             MMAGIC_WEIGHT_INITIALIZERS, 'models')
TASK_UTILS = _child('task util', MMAGIC_TASK_UTILS, 'models', 'synthesis')
RUNNERS = _child('runner', MMAGIC_RUNNERS, 'engine')
VISBACKENDS = _child('vis_backend', MMAGIC_VISBACKENDS, 'engine')
VISUALIZERS = _child('visualizer', MMAGIC_VISUALIZERS, 'engine')
#: MGD3 components (mode discovery, generators, evaluation classifiers) are
#: task utilities in OpenMMLab's sense: the child of mmagic's TASK_UTILS (a
#: registry has one child per scope, so this is the same registry).
SYNTHESIS = TASK_UTILS
