"""Latent space: the VAE wrapper, the latent data preprocessor (frozen VAE /
text encoder kept out of checkpoints), the latent cache and a teacher in
half precision."""
import json
import os

import pytest
import torch

import mmdistill  # noqa: F401
from _tiny_diffusers import make_tiny_dit, make_tiny_sd
from mmdistill.datasets import LatentCacheDataset, write_latent_cache
from mmdistill.models.adapters import LatentDataPreprocessor
from mmdistill.registry import MODELS
from mmdistill.utils import UserError


@pytest.fixture(scope='module')
def sd_folder(tmp_path_factory):
    return make_tiny_sd(str(tmp_path_factory.mktemp('sd')))


def _images(n, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_vae_wrapper_scaling_against_diffusers(sd_folder):
    from diffusers import AutoencoderKL
    pre = LatentDataPreprocessor(vae=sd_folder)
    raw = AutoencoderKL.from_pretrained(os.path.join(sd_folder, 'vae'))
    x = _images(2)
    sf = raw.config.scaling_factor
    with torch.no_grad():
        ref = raw.encode(x).latent_dist.mean * sf
        torch.testing.assert_close(pre.encode(x), ref)
        dec = raw.decode(ref / sf).sample.clamp(-1, 1)
        torch.testing.assert_close(pre.decode(ref), dec)
    assert pre.vae.latent_shape(16) == (4, 8, 8)


def test_frozen_models_outside_state_dict_and_follow_dtype(sd_folder):
    pre = LatentDataPreprocessor(vae=sd_folder, text_encoder=sd_folder)
    assert len(pre.state_dict()) == 0 and len(list(pre.parameters())) == 0
    twin = LatentDataPreprocessor(vae=sd_folder)
    assert twin.vae is pre.vae  # one frozen VAE per folder and process
    pre.double()
    assert pre.vae.dtype == torch.float64
    assert next(pre.text_encoder.parameters()).dtype == torch.float64
    pre.float()
    assert not any(p.requires_grad for p in pre.vae.parameters())


def test_preprocessor_encodes_images_and_prompts(sd_folder):
    pre = LatentDataPreprocessor(vae=sd_folder, text_encoder=sd_folder)
    x = _images(2)
    out = pre(dict(inputs=x, data_samples=['a cat', 'a dog']), True)
    torch.testing.assert_close(out['inputs'], pre.encode(x))
    torch.testing.assert_close(out['data_samples'],
                               pre.encode_condition(['a cat', 'a dog']))
    assert out['data_samples'].shape == (2, 16, 32)
    # the two prompts give different embeddings, the empty one the null
    assert not torch.allclose(out['data_samples'][0],
                              out['data_samples'][1])
    torch.testing.assert_close(pre.null_embedding(),
                               pre.encode_condition(['']))


def test_latent_cache_roundtrip_class_labels(tmp_path):
    folder = make_tiny_dit(str(tmp_path / 'dit'))
    pre = LatentDataPreprocessor(vae=folder)
    x = _images(5, size=8)
    data = [dict(inputs=x[i], data_samples=i % 3) for i in range(5)]
    cache = str(tmp_path / 'cache')
    m = write_latent_cache(data, pre.vae, cache, batch_size=2,
                           shard_size=2)
    with open(os.path.join(cache, 'manifest.json')) as f:
        assert json.load(f) == m
    assert m['num_samples'] == 5 and m['latent_shape'] == [4, 4, 4]
    assert len(m['shards']) == 3 and m['condition'] == 'class'
    ds = LatentCacheDataset(cache)
    assert len(ds) == 5
    ref = pre.encode(x)
    for i in range(5):
        item = ds[i]
        assert item['data_samples'] == i % 3
        torch.testing.assert_close(item['inputs'], ref[i], atol=2e-3,
                                   rtol=1e-3)  # stored as float16
    # the cached batch passes through a preprocessor that does not encode
    raw = MODELS.build(dict(type='LatentDataPreprocessor', vae=folder,
                            encode_inputs=False))
    batch = raw(dict(inputs=torch.stack([ds[0]['inputs'], ds[1]['inputs']]),
                     data_samples=torch.tensor([0, 1])), True)
    torch.testing.assert_close(batch['inputs'][1], ds[1]['inputs'])


def test_latent_cache_text_and_errors(tmp_path, sd_folder):
    pre = LatentDataPreprocessor(vae=sd_folder, text_encoder=sd_folder)
    x = _images(3)
    caps = ['one', 'two', 'three']
    data = [dict(inputs=x[i], data_samples=caps[i]) for i in range(3)]
    cache = str(tmp_path / 'cache')
    with pytest.raises(UserError, match='text encoder'):
        write_latent_cache(data, pre.vae, cache)
    m = write_latent_cache(data, pre.vae, cache, text_encoder=pre.text_encoder)
    assert m['condition'] == 'text'
    ds = LatentCacheDataset(cache)
    torch.testing.assert_close(ds[2]['data_samples'],
                               pre.encode_condition(['three'])[0],
                               atol=2e-3, rtol=1e-3)
    cached = LatentDataPreprocessor(vae=sd_folder, encode_inputs=False,
                                    null_embedding=os.path.join(cache,
                                                                'null.pt'))
    torch.testing.assert_close(cached.null_embedding(),
                               pre.null_embedding())
    os.unlink(os.path.join(cache, 'manifest.json'))  # an interrupted cache
    with pytest.raises(UserError, match='no latent cache'):
        LatentCacheDataset(cache)


def test_teacher_in_half_precision(tmp_path):
    folder = make_tiny_dit(str(tmp_path / 'dit'))
    full = MODELS.build(dict(type='DiffusersDiT', pretrained=folder))
    half = MODELS.build(dict(type='DiffusersDiT', pretrained=folder,
                             torch_dtype='bfloat16'))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for a, b in zip(full.parameters(), half.parameters()):
            noise = torch.randn(a.shape, generator=g) * 0.05
            a.add_(noise)
            b.copy_(a)
    assert half.dtype == torch.bfloat16
    z, t, y = torch.randn(2, 4, 4, 4), torch.rand(2), torch.tensor([1, 10])
    with torch.no_grad():
        out, ref = half(z, t, y), full(z, t, y)
    assert out.dtype == torch.float32
    err = (out - ref).norm() / ref.norm()
    assert 0 < err < 0.05, err
    # a student copied from a half-precision teacher trains in float32
    import copy
    student = copy.deepcopy(half).enable_guidance_embedding()
    assert student.dtype == torch.float32 and half.dtype == torch.bfloat16
    with pytest.raises(UserError, match='torch_dtype'):
        MODELS.build(dict(type='DiffusersDiT', pretrained=folder,
                          torch_dtype='int8'))


def test_text_teacher_null_and_other_conditions(sd_folder):
    teacher = MODELS.build(dict(
        type='TextCFGDiffusion',
        denoiser=dict(type='DiffusersTextUNet', pretrained=sd_folder),
        data_preprocessor=dict(type='LatentDataPreprocessor', vae=sd_folder,
                               text_encoder=sd_folder)))
    assert teacher.image_shape == (4, 8, 8) and teacher.prediction_type == \
        'eps'
    pre = teacher.data_preprocessor
    y = pre.encode_condition(['one', 'two', 'three'])
    empty = pre.encode_condition([''])[0]
    for null in (teacher.null_condition(y),
                 teacher.condition_provider().null(y)):
        assert null.shape == y.shape
        for i in range(3):
            torch.testing.assert_close(null[i], empty)
    other = teacher.random_condition(y, torch.Generator().manual_seed(0))
    for i in range(3):  # another caption of the batch, never its own
        match = [j for j in range(3) if torch.equal(other[i], y[j])]
        assert len(match) == 1 and match[0] != i
