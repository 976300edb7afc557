"""Config loading with one-line errors (used by the tools and by library
code that takes a config path)."""
import copy
import glob
import os

from .errors import UserError


def load_config(path, cfg_options=()):
    """``Config.fromfile`` plus ``--cfg-options`` with one-line errors."""
    from mmengine.config import Config, DictAction
    if not os.path.isfile(path):
        raise UserError(f'config not found: {path} (see configs/ for the '
                        'shipped ones)')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # noqa: BLE001
        raise UserError(f'cannot parse config {path}: '
                        f'{type(e).__name__}: {str(e).splitlines()[0]}') from e
    if cfg_options:
        opts = {}
        for item in cfg_options:
            if '=' not in item:
                raise UserError(f'bad --cfg-options entry {item!r} (use '
                                'KEY=VALUE)')
            k, v = item.split('=', 1)
            if not k or not all(k.split('.')):
                raise UserError(f'bad --cfg-options entry {item!r}: empty '
                                'key or key part (use KEY=VALUE, e.g. '
                                'train_cfg.max_iters=100)')
            _check_list_indices(cfg, k, item)
            try:
                opts[k] = DictAction._parse_iterable(v)
            except (RecursionError, AssertionError, ValueError) as e:
                raise UserError(
                    f'cannot parse --cfg-options value {item!r} (lists and '
                    'tuples of plain values only; put dicts in a config '
                    'file)') from e
        cfg.merge_from_dict(opts)
        if any(k.split('.')[0] == 'custom_imports' for k in opts):
            import_custom_modules(cfg.get('custom_imports'))
    return cfg


def config_beside(checkpoint, hint='pass the config it was trained with'):
    """The config a training run dumped beside ``checkpoint``: the single
    ``*.py`` file of the checkpoint's folder (its work dir).

    Args:
        checkpoint (str): a checkpoint path.
        hint (str): the fix named in the error (how the caller's user passes
            a config instead).

    Raises:
        UserError: the folder holds no config file or more than one.
    """
    folder = os.path.dirname(os.path.abspath(checkpoint))
    found = sorted(glob.glob(os.path.join(folder, '*.py')))
    if len(found) != 1:
        raise UserError(f'cannot tell the config of {checkpoint}: its folder '
                        f'holds {len(found)} config files; {hint}')
    return found[0]


def without_teacher_files(cfg):
    """A copy of a distiller config (or of its ``model`` dict) that loads
    no teacher weights (``teacher_ckpt`` / ``uncond_teacher_ckpt`` set to
    None): sampling uses only the student."""
    cfg = copy.deepcopy(cfg)
    model = cfg['model'] if isinstance(cfg.get('model'), dict) else cfg
    for key in ('teacher_ckpt', 'uncond_teacher_ckpt'):
        if key in model:
            model[key] = None
    return cfg


def import_custom_modules(custom_imports):
    """Import ``custom_imports=dict(imports=[...])`` given through
    ``--cfg-options`` (mmengine imports those of a config file while parsing
    it, never those merged in afterwards)."""
    from mmengine.utils import import_modules_from_strings
    ci = dict(custom_imports or {})
    imports = ci.get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    try:
        import_modules_from_strings(
            imports, allow_failed_imports=bool(ci.get(
                'allow_failed_imports', False)))
    except ImportError as e:
        raise UserError(f'cannot import custom_imports {imports}: {e} (the '
                        'module must be importable: check its name and '
                        'PYTHONPATH)') from e


def _check_list_indices(cfg, key, item):
    """A numeric part of ``key`` that indexes a list of the config must be in
    range (mmengine raises a KeyError deep in the merge otherwise)."""
    node = cfg
    for i, part in enumerate(key.split('.')):
        if isinstance(node, (list, tuple)):
            if not part.isdigit():
                return
            if int(part) >= len(node):
                where = '.'.join(key.split('.')[:i])
                raise UserError(
                    f'bad --cfg-options entry {item!r}: index {part} is out '
                    f'of range ({where} has {len(node)} entries: 0..'
                    f'{len(node) - 1})')
            node = node[int(part)]
        elif hasattr(node, 'get'):
            try:
                node = node.get(part)
            except Exception:  # noqa: BLE001
                return
            if node is None:
                return
        else:
            return
