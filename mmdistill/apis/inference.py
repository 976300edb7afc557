"""Build a model from its config and load trained weights safely."""
import torch

from mmdistill.utils import UserError, load_into, load_state_dict


def init_model(cfg, checkpoint=None, device='cpu'):
    """Build ``cfg.model`` and load ``checkpoint`` (weights only).

    Args:
        cfg (Config | dict): a config with a ``model`` entry.
        checkpoint (str, optional): a checkpoint written by
            ``tools/train.py`` (or a bare state dict / safetensors file).
        device (str): where to put the model.

    Returns:
        nn.Module in eval mode.
    """
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
