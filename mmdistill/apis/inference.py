"""Build a model from its config and load trained weights safely."""
import copy
import os

import torch

from mmdistill.utils import UserError, load_into, load_state_dict
from mmdistill.utils.config import without_teacher_files


def init_model(cfg, checkpoint=None, device='cpu', cfg_options=None):
    """Build ``cfg.model`` and load ``checkpoint`` (weights only).

    Args:
        cfg (str | Config | dict): a config with a ``model`` entry, or the
            path of one (``mmdistill::teacher/cfg_unet_digits.py`` names a
            shipped config).
        checkpoint (str, optional): a checkpoint written by
            ``tools/train.py`` (or a bare state dict / safetensors file), a
            local path or an http(s) URL (downloaded once into the torch
            hub cache).
        device (str): where to put the model.
        cfg_options (list[str] | dict, optional): overrides of a config
            given by path (``KEY=VALUE`` strings as ``--cfg-options``, or a
            dict of dotted keys).

    Returns:
        nn.Module in eval mode.
    """
    cfg = as_config(cfg, cfg_options)
    from mmdistill import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmengine.registry import DefaultScope

    from mmdistill.registry import MODELS
    if cfg.get('model') is None:
        raise UserError('the config has no `model` entry (pass a model '
                        'config, e.g. configs/teacher/cfg_unet_digits.py)')
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('mmdistill-inference',
                                  scope_name='mmdistill')
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        state = load_state_dict(checkpoint)
        load_into(model, state, 'model', checkpoint)
    return model.to(torch.device(device)).eval()


def as_config(cfg, cfg_options=None):
    """A Config from a Config / dict (used as is) or a config path
    (``mmdistill::X`` resolved to the shipped configs), with
    ``cfg_options`` merged into a copy.

    Raises:
        UserError: a missing or unparsable config file.
    """
    from mmengine.config import Config

    from mmdistill.registry import resolve_config_path
    from mmdistill.utils.config import load_config
    if isinstance(cfg, os.PathLike):
        cfg = os.fspath(cfg)
    if isinstance(cfg, str):
        try:
            path = resolve_config_path(cfg)
        except FileNotFoundError as e:
            raise UserError(str(e)) from e
        opts = cfg_options or []
        cfg = load_config(path, opts if not isinstance(opts, dict) else [])
        if isinstance(opts, dict):
            cfg.merge_from_dict(opts)
        return cfg
    if cfg_options and not isinstance(cfg_options, dict):
        raise UserError('cfg_options as KEY=VALUE strings need a config '
                        'path; pass a dict of dotted keys with a Config')
    if not isinstance(cfg, Config):
        cfg = Config(copy.deepcopy(dict(cfg)))
    elif cfg_options:
        cfg = copy.deepcopy(cfg)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_student(checkpoint, config=None, device='cpu'):
    """Build a distiller and load its student from ``checkpoint``.

    The teacher is not loaded (sampling uses only the student), so a
    student file can be read without the teacher's checkpoint on disk.

    Args:
        checkpoint (str): a stage-1 / stage-2 training checkpoint or a
            ``student_{N}step.pth`` file (``net.*``, ``num_steps``).
        config (str | Config, optional): the config the student was trained
            with; by default the single config dumped beside
            ``checkpoint`` (the run's work dir).
        device (str): where to put the model.

    Returns:
        nn.Module in eval mode, its ``num_steps`` taken from the file.

    Raises:
        UserError: no config found, or the file does not hold a complete
            student of this config.
    """
    from mmdistill.utils import load_student_checkpoint
    from mmdistill.utils.config import config_beside, load_config
    if config is None:
        config = config_beside(checkpoint)
    cfg = without_teacher_files(load_config(config) if isinstance(
        config, str) else config)
    model = init_model(cfg)
    load_student_checkpoint(model, checkpoint)
    return model.to(torch.device(device)).eval()


def load_for_sampling(cfg, checkpoint=None, device='cpu'):
    """The model that samples: for a distiller config (one with a
    ``teacher_ckpt`` entry) only its student, from a training checkpoint or
    a ``student_{N}step.pth`` file (:func:`load_student`; the teacher's
    file need not exist), else the whole model (:func:`init_model`).

    Args:
        cfg (Config): a loaded config.
        checkpoint (str, optional): its weights (none: as initialised).
        device (str): where to put the model.

    Returns:
        nn.Module in eval mode.
    """
    if 'teacher_ckpt' not in cfg.model:
        return init_model(cfg, checkpoint, device)
    if checkpoint is None:
        return init_model(without_teacher_files(cfg), None, device)
    return load_student(checkpoint, cfg, device)
