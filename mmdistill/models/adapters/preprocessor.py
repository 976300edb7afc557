"""The VAE wrapper and the data preprocessor of latent-space diffusion.

Latent diffusion (Rombach et al.) runs the diffusion on
z = s * (E[q(z | x)] - b) with the VAE's ``scaling_factor`` s (0.18215 for
SD-1.x / DiT's sd-vae-ft-*) and ``shift_factor`` b (0 unless the VAE config
sets one); images come back as x = D(z / s + b). The VAE and the text encoder
are frozen and kept out of the model's state dict: checkpoints hold only
the networks that are trained.
"""
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from mmdistill.registry import MODELS
from mmdistill.utils import UserError
from ..data_preprocessor import DiffusionDataPreprocessor
from .networks import load_component, parse_dtype


class VAEWrapper(nn.Module):
    """A frozen diffusers ``AutoencoderKL`` in latent-diffusion units.

    ``encode(x) = s * (mean of q(z | x) - b)``, ``decode(z) = D(z / s + b)``
    clamped to [-1, 1].

    Args:
        vae (AutoencoderKL): the autoencoder.
    """

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, 'shift_factor', None)
                                  or 0.0)

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        subfolder: str = 'vae',
        torch_dtype: Optional[Union[str, torch.dtype]] = None
    ) -> 'VAEWrapper':
        from diffusers import AutoencoderKL
        return cls(load_component(AutoencoderKL, path, subfolder,
                                  'AutoencoderKL (the VAE)', torch_dtype))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @property
    def downsample(self) -> int:
        """Spatial down-sampling factor 2^(levels - 1)."""
        return 2**(len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, image_size: int) -> Tuple[int, int, int]:
        """(C_latent, H / f, W / f) for square images of ``image_size``."""
        s = image_size // self.downsample
        return (self.vae.config.latent_channels, s, s)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.vae.encode(x.to(self.dtype)).latent_dist.mean
        return ((mean.float() - self.shift_factor) * self.scaling_factor)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.vae.decode((z / self.scaling_factor + self.shift_factor).to(
            self.dtype)).sample
        return x.float().clamp(-1, 1)

    def train(self, mode: bool = True) -> 'VAEWrapper':  # always frozen
        return super().train(False)


class TextEncoderWrapper(nn.Module):
    """A frozen CLIP text encoder + tokenizer: prompts -> the last hidden
    states (B, L, D) used as ``encoder_hidden_states`` (padding to the
    tokenizer's ``model_max_length``, as Stable Diffusion)."""

    def __init__(self, text_encoder: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.text_encoder = text_encoder.eval().requires_grad_(False)
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        torch_dtype: Optional[Union[str, torch.dtype]] = None
    ) -> 'TextEncoderWrapper':
        import os.path as osp
        for sub in ('text_encoder', 'tokenizer'):
            if not osp.isdir(osp.join(path, sub)):
                raise UserError(f'text model folder incomplete: missing '
                                f'{osp.join(path, sub)} (a Stable-Diffusion-'
                                'style folder needs text_encoder/ and '
                                'tokenizer/)')
        from transformers import CLIPTextModel, CLIPTokenizer
        try:
            tok = CLIPTokenizer.from_pretrained(osp.join(path, 'tokenizer'),
                                                local_files_only=True)
            enc = CLIPTextModel.from_pretrained(
                osp.join(path, 'text_encoder'), local_files_only=True,
                torch_dtype=parse_dtype(torch_dtype))
        except (OSError, ValueError) as e:
            raise UserError(f'cannot load the CLIP text encoder/tokenizer '
                            f'from {path}: {str(e).splitlines()[0][:200]}'
                            ) from e
        return cls(enc, tok)

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(list(prompts), padding='max_length',
                             max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors='pt').input_ids
        p = next(self.text_encoder.parameters())
        return self.text_encoder(ids.to(p.device))[0].float()

    def train(self,
              mode: bool = True) -> 'TextEncoderWrapper':  # always frozen
        return super().train(False)


_SHARED = {}


def _shared(key, build):
    """One frozen VAE / text encoder per folder in a process: the teacher
    and the student model of a distiller share it."""
    import weakref
    ref = _SHARED.get(key)
    obj = ref() if ref is not None else None
    if obj is None:
        obj = build()
        _SHARED[key] = weakref.ref(obj)
    return obj


@MODELS.register_module()
class LatentDataPreprocessor(DiffusionDataPreprocessor):
    """Batches for latent-space diffusion.

    ``inputs``: images in [-1, 1] are encoded on the fly with the VAE
    (``encode_inputs=True``), or are already latents (a latent cache,
    ``encode_inputs=False``). ``data_samples``: class labels (long), prompt
    strings (encoded with the text encoder) or cached prompt embeddings.
    :meth:`decode` turns sampled latents into images (evaluation and
    pictures only).

    The VAE and text encoder are held outside the module tree (frozen, not
    in checkpoints, not in the optimizer) and follow the model's device.

    Args:
        vae (str | dict): diffusers folder (with ``vae/``) or
            ``dict(pretrained=..., subfolder='vae', torch_dtype=None)``.
        text_encoder (str | None): folder with ``text_encoder/`` and
            ``tokenizer/`` (text-to-image models).
        encode_inputs (bool): encode images (True) or take latents (False).
        null_embedding (str | None): a ``.pt`` file with the empty prompt's
            embedding (1, L, D), when no text encoder is loaded (cache).
    """

    def __init__(
            self,
            vae: Union[str, dict],
            text_encoder: Optional[str] = None,
            encode_inputs: bool = True,
            null_embedding: Optional[str] = None,
            text_dtype: Optional[Union[str, torch.dtype]] = None) -> None:
        super().__init__()
        if isinstance(vae, str):
            vae = dict(pretrained=vae)
        vae = dict(vae)
        frozen = dict(vae=_shared(
            ('vae', vae.get('pretrained'), vae.get('subfolder', 'vae'),
             str(vae.get('torch_dtype'))),
            lambda: VAEWrapper.from_pretrained(vae.pop('pretrained', None),
                                               **vae)))
        if text_encoder is not None:
            frozen['text'] = _shared(
                ('text', text_encoder, str(text_dtype)),
                lambda: TextEncoderWrapper.from_pretrained(text_encoder,
                                                           text_dtype))
        object.__setattr__(self, '_frozen', frozen)
        self.encode_inputs = encode_inputs
        self._null = None
        if null_embedding is not None:
            from mmdistill.utils import load_state_dict
            self._null = load_state_dict(null_embedding)['null_embedding']

    @property
    def vae(self) -> VAEWrapper:
        return self._frozen['vae']

    @property
    def text_encoder(self) -> Optional[TextEncoderWrapper]:
        return self._frozen.get('text')

    def _apply(self, fn, *args, **kwargs):
        for m in self._frozen.values():
            m._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> scaled latents."""
        return self.vae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images in [-1, 1]."""
        return self.vae.decode(z)

    def encode_condition(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> embeddings (B, L, D)."""
        if self.text_encoder is None:
            raise UserError('this model has no text encoder: set '
                            'data_preprocessor.text_encoder to the model '
                            'folder to use prompts')
        return self.text_encoder(prompts)

    def null_embedding(self) -> torch.Tensor:
        """The empty prompt's embedding (1, L, D)."""
        if self._null is None:
            self._null = self.encode_condition([''])
        return self._null

    def forward(self, data: dict, training: bool = False) -> dict:
        labels = data.get('data_samples')
        data = dict(data)
        text = isinstance(labels, (list, tuple)) and labels and isinstance(
            labels[0], str)
        if text:
            data.pop('data_samples')
        out = super().forward(data, training)
        if self.encode_inputs:
            out['inputs'] = self.encode(out['inputs'])
        if text:
            out['data_samples'] = self.encode_condition(labels).to(
                out['inputs'].device)
        elif torch.is_tensor(labels) and labels.is_floating_point():
            out['data_samples'] = self.cast_data(labels).float()
        return out
