"""Feature extractors for the generative metrics.

An extractor maps images in [-1, 1] (B, C, H, W) to ``features`` (B, D) for
Frechet distances and ``probs`` (B, K) class probabilities for the Inception
Score and sample accuracy. Built from a config by :func:`build_extractor`
(``type='inception'`` or ``'classifier'``, or a registered class name).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdistill.registry import MODELS
from mmdistill.utils import (UserError, file_sha256, load_into,
                             load_state_dict, resolve_package_path,
                             sub_state_dict)

INCEPTION_FILE = 'inception-2015-12-05.pt'
INCEPTION_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/'
                 'pretrained/metrics/' + INCEPTION_FILE)
DEFAULT_CLASSIFIER = 'checkpoints/digits_classifier.pth'

ALIASES = dict(inception='InceptionFeatureExtractor',
               classifier='ClassifierFeatureExtractor')


def inception_search_paths() -> List[str]:
    """Where the TorchScript Inception is looked for when no path is given:
    ``$MMDISTILL_INCEPTION``, then the caches mmagic and torch.hub use."""
    home = osp.expanduser('~')
    hub = os.environ.get('TORCH_HOME', osp.join(home, '.cache', 'torch'))
    paths = [os.environ.get('MMDISTILL_INCEPTION')]
    paths += [osp.join(home, '.cache', 'openmmlab', 'mmagic', INCEPTION_FILE),
              osp.join(home, '.cache', 'openmmlab', 'pretrain',
                       INCEPTION_FILE),
              osp.join(hub, 'hub', 'checkpoints', INCEPTION_FILE)]
    return [p for p in paths if p]


def resolve_repo_path(path: Union[str, os.PathLike]) -> str:
    """``path`` as given if it exists, else relative to the source checkout,
    else inside the installed package's ``.mim`` folder (so the shipped
    ``checkpoints/...`` resolve from any working folder, with or without a
    checkout; :func:`mmdistill.utils.resolve_package_path`)."""
    return resolve_package_path(path)


def to_uint8_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> round(127.5 (x + 1)) in [0, 255] as uint8."""
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(
        torch.uint8)


class FeatureExtractor(nn.Module):
    """Base class: ``extract(images, probs=True) -> dict(features, probs)``.

    Attributes:
        key (str): identifies the extractor and its weights in cache names.
    """
    key = 'extractor'

    @torch.no_grad()
    def extract(self,
                images: torch.Tensor,
                probs: bool = True) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


@MODELS.register_module()
class InceptionFeatureExtractor(FeatureExtractor):
    """The community reference Inception-v3 (TorchScript
    ``inception-2015-12-05.pt`` of StyleGAN2-ADA, the 'StyleGAN' style of
    mmagic). It takes uint8-range RGB NCHW images of any size and resizes to
    299 x 299 itself; ``model(x, return_features=True)`` gives the 2048-d
    pool features, ``model(x, no_output_bias=True)`` the softmax over 1008
    classes used for the Inception Score. Grey images are repeated to RGB.

    Args:
        path (str, optional): the TorchScript file; when None, the paths of
            :func:`inception_search_paths` are tried. Never downloads.
    """

    def __init__(self, path: Optional[str] = None) -> None:
        super().__init__()
        candidates = [path] if path else inception_search_paths()
        found = next((p for p in candidates if osp.isfile(p)), None)
        if found is None:
            where = path if path else ', '.join(candidates)
            raise UserError(
                f'Inception weights {INCEPTION_FILE} not found (looked at '
                f'{where}); download it from {INCEPTION_URL} and pass its '
                'path as extractor=dict(type=\'inception\', path=...)')
        try:
            self.model = torch.jit.load(found, map_location='cpu').eval()
        except Exception as e:  # noqa: BLE001
            raise UserError(f'cannot load TorchScript Inception {found}: '
                            f'{str(e).splitlines()[0][:160]} (re-download '
                            f'it from {INCEPTION_URL})') from e
        self.path = found
        self.key = f'inception-{file_sha256(found, 12)}'

    @torch.no_grad()
    def extract(self,
                images: torch.Tensor,
                probs: bool = True) -> Dict[str, torch.Tensor]:
        x = to_uint8_range(images)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        dev = next(iter(self.model.parameters()), torch.empty(0)).device
        x = x.to(dev)
        out = dict(features=self.model(x, return_features=True).float())
        if probs:
            out['probs'] = self.model(x, no_output_bias=True).float()
        return out


@MODELS.register_module()
class ClassifierFeatureExtractor(FeatureExtractor):
    """A trained classifier (default: the digits CNN): its penultimate
    features (``net.features``) for Frechet distances and ``softmax(net(x))``
    for the Inception Score and accuracy.

    Args:
        checkpoint (str): weights (keys ``net.*`` or bare), loaded safely.
        net (dict): the network config the weights were trained with.
    """

    def __init__(self,
                 checkpoint: str = DEFAULT_CLASSIFIER,
                 net: dict = dict(type='DigitsCNN', in_channels=1,
                                  num_classes=10, width=32,
                                  feat_dim=128)) -> None:
        super().__init__()
        self.net = MODELS.build(net).eval()
        checkpoint = resolve_repo_path(checkpoint)
        state = load_state_dict(checkpoint)
        prefix, sub = sub_state_dict(state, ['net.'])
        load_into(self.net, sub if prefix else state, 'classifier',
                  checkpoint)
        self.requires_grad_(False)
        self.key = f'classifier-{file_sha256(checkpoint, 12)}'

    @torch.no_grad()
    def extract(self,
                images: torch.Tensor,
                probs: bool = True) -> Dict[str, torch.Tensor]:
        self.net.eval()
        dev = next(self.net.parameters()).device
        feats = self.net.features(images.float().to(dev))
        out = dict(features=feats)
        if probs:
            out['probs'] = F.softmax(self.net.head(feats), dim=1)
        return out


def build_extractor(
        cfg: Union[str, dict, FeatureExtractor]) -> FeatureExtractor:
    """Build an extractor from ``dict(type='inception'|'classifier'|<class
    name>, ...)``; an already built extractor is returned as is."""
    if isinstance(cfg, FeatureExtractor):
        return cfg
    if isinstance(cfg, str):
        cfg = dict(type=cfg)
    cfg = dict(cfg)
    cfg['type'] = ALIASES.get(cfg.get('type'), cfg.get('type'))
    if MODELS.get(cfg['type']) is None:
        raise UserError(f'unknown feature extractor {cfg["type"]!r} (use '
                        "'inception' or 'classifier')")
    return MODELS.build(cfg)
