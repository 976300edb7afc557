"""A latent cache: encode a data set once with the VAE, read latents after.

Layout of a cache folder::

    manifest.json        written last: its presence marks a complete cache
    shard_00000.pt ...   dict(latents=(n, C, h, w) float16,
                              conditions=(n,) long  or  (n, L, D) float16)
    null.pt              dict(null_embedding=(1, L, D)) for text data

Every file is written atomically (temporary file + rename), so an
interrupted run leaves no half file, and a cache without a manifest is
rebuilt. Latents are the VAE posterior means times the scaling factor
(see :class:`VAEWrapper`); training on the cache sees the same z as
on-the-fly encoding with ``sample_posterior`` off.
"""
import json
import os
import os.path as osp
from typing import Callable, List, Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from mmdistill.registry import DATASETS
from mmdistill.utils import (UserError, atomic_torch_save, atomic_write,
                             load_state_dict)

MANIFEST = 'manifest.json'
CACHE_VERSION = 1


@torch.no_grad()
def write_latent_cache(
        dataset: Dataset,
        vae: nn.Module,
        out_dir: str,
        batch_size: int = 64,
        text_encoder: Optional[Callable[[List[str]], torch.Tensor]] = None,
        shard_size: int = 4096,
        source: Optional[dict] = None) -> dict:
    """Encode ``dataset`` (items ``dict(inputs, data_samples)``) into a
    cache folder and return the manifest dict.

    Args:
        dataset: images in [-1, 1] (C, H, W) with a class label or caption.
        vae (VAEWrapper): the frozen VAE.
        out_dir (str): cache folder (created).
        text_encoder (callable): prompts -> (B, L, D), for captions.
        shard_size (int): samples per shard file.
        source (dict): a description of the data/VAE stored in the manifest.
    """
    os.makedirs(out_dir, exist_ok=True)
    if osp.isfile(osp.join(out_dir, MANIFEST)):
        os.unlink(osp.join(out_dir, MANIFEST))
    shards, buf_z, buf_c, n_total = [], [], [], 0
    latent_shape, cond_kind = None, None

    def flush():
        nonlocal buf_z, buf_c
        if not buf_z:
            return
        name = f'shard_{len(shards):05d}.pt'
        z = torch.cat(buf_z)
        c = torch.cat(buf_c)
        atomic_torch_save(dict(latents=z, conditions=c),
                          osp.join(out_dir, name))
        shards.append(dict(file=name, num_samples=len(z)))
        buf_z, buf_c = [], []

    n = len(dataset)
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        x = torch.stack([torch.as_tensor(it['inputs']) for it in items])
        p = next(vae.parameters())
        z = vae.encode(x.to(p.device)).cpu().half()
        conds = [it['data_samples'] for it in items]
        if isinstance(conds[0], str):
            if text_encoder is None:
                raise UserError('the data set has captions: give a text '
                                'encoder to cache their embeddings')
            c = text_encoder(conds).cpu().half()
            cond_kind = 'text'
        else:
            c = torch.as_tensor(conds).long()
            cond_kind = 'class'
        latent_shape = list(z.shape[1:])
        buf_z.append(z)
        buf_c.append(c)
        n_total += len(z)
        if sum(len(b) for b in buf_z) >= shard_size:
            flush()
    flush()
    if cond_kind == 'text':
        atomic_torch_save(dict(null_embedding=text_encoder(['']).cpu()),
                          osp.join(out_dir, 'null.pt'))
    manifest = dict(version=CACHE_VERSION, num_samples=n_total,
                    latent_shape=latent_shape, condition=cond_kind,
                    scaling_factor=vae.scaling_factor,
                    shift_factor=vae.shift_factor, dtype='float16',
                    shards=shards, source=source or {})
    atomic_write(osp.join(out_dir, MANIFEST),
                 lambda f: f.write(json.dumps(manifest, indent=2)), mode='w')
    return manifest


def read_manifest(cache_dir: str) -> dict:
    path = osp.join(cache_dir, MANIFEST)
    if not osp.isfile(path):
        raise UserError(f'no latent cache at {cache_dir} (missing {MANIFEST}; '
                        'write it with `python tools/make_latent_cache.py '
                        'CONFIG --out DIR`)')
    with open(path) as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as e:
            raise UserError(f'corrupt latent cache manifest {path}: {e} '
                            '(delete the folder and rebuild it)') from e
    if manifest.get('version') != CACHE_VERSION:
        raise UserError(f'latent cache {cache_dir} has version '
                        f'{manifest.get("version")}, expected {CACHE_VERSION} '
                        '(rebuild it)')
    return manifest


@DATASETS.register_module()
class LatentCacheDataset(Dataset):
    """Items ``dict(inputs=latent (C, h, w) float32, data_samples=label |
    embedding (L, D))`` from a cache written by :func:`write_latent_cache`.
    Use with ``LatentDataPreprocessor(encode_inputs=False)``.
    """

    def __init__(self, cache_dir: str) -> None:
        self.manifest = read_manifest(cache_dir)
        zs, cs = [], []
        for shard in self.manifest['shards']:
            d = load_state_dict(osp.join(cache_dir, shard['file']))
            zs.append(d['latents'])
            cs.append(d['conditions'])
        self.latents, self.conditions = torch.cat(zs), torch.cat(cs)
        if len(self.latents) != self.manifest['num_samples']:
            raise UserError(f'latent cache {cache_dir} is inconsistent with '
                            'its manifest (rebuild it)')

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> dict:
        c = self.conditions[i]
        c = c.float() if c.is_floating_point() else int(c)
        return dict(inputs=self.latents[i].float(), data_samples=c)
