"""Tiny randomly initialised diffusers model folders of each family, for
smoke tests and examples (nothing is downloaded). The layout matches the
real models' folders (``unet/`` or ``transformer/``, ``vae/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``), so a config written for
DiT-XL/2 or SD-1.5 runs on them with only the path and sizes changed.
"""
import json
import os
import os.path as osp

import torch


def _scheduler(path, beta_schedule='linear', beta_start=1e-4, beta_end=0.02,
               prediction_type='epsilon', num_train_timesteps=1000):
    from diffusers import DDIMScheduler
    DDIMScheduler(num_train_timesteps=num_train_timesteps,
                  beta_schedule=beta_schedule, beta_start=beta_start,
                  beta_end=beta_end, prediction_type=prediction_type
                  ).save_pretrained(osp.join(path, 'scheduler'))


def tiny_vae(in_channels=3, latent_channels=4, seed=0):
    """An AutoencoderKL with 2 levels (8x down-sampling: no, 2x) and 8/16
    channels."""
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=in_channels, out_channels=in_channels,
        down_block_types=('DownEncoderBlock2D', ) * 2,
        up_block_types=('UpDecoderBlock2D', ) * 2,
        block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=8, sample_size=16)


def make_tiny_unet2d(path, num_classes=10, in_channels=1, sample_size=8,
                     prediction_type='epsilon', seed=0):
    """A class-conditional (``num_classes + 1`` embeddings; 0 classes:
    unconditional) UNet2DModel, 16 channels, pixel space."""
    from diffusers import UNet2DModel
    torch.manual_seed(seed)
    UNet2DModel(
        sample_size=sample_size, in_channels=in_channels,
        out_channels=in_channels, layers_per_block=1,
        block_out_channels=(16, 16),
        down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
        up_block_types=('AttnUpBlock2D', 'UpBlock2D'), norm_num_groups=8,
        attention_head_dim=8,
        num_class_embeds=num_classes + 1 if num_classes else None,
    ).save_pretrained(osp.join(path, 'unet'))
    _scheduler(path, prediction_type=prediction_type)
    return path


def make_tiny_dit(path, num_classes=10, image_size=8, seed=0):
    """A 2-layer DiTTransformer2DModel (2 heads x 8, patch 2, learned
    sigma: out_channels = 2 x 4) on the latents of a tiny 2x VAE."""
    from diffusers import DiTTransformer2DModel
    vae = tiny_vae(seed=seed)
    vae.save_pretrained(osp.join(path, 'vae'))
    torch.manual_seed(seed + 1)
    DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4,
        out_channels=8, num_layers=2, sample_size=image_size // 2,
        patch_size=2, num_embeds_ada_norm=num_classes,
    ).save_pretrained(osp.join(path, 'transformer'))
    _scheduler(path)
    return path


def _tiny_tokenizer(path, max_length=16):
    """A character-level CLIP BPE tokenizer (no merges)."""
    from transformers import CLIPTokenizer
    chars = [chr(i) for i in range(33, 127)]
    vocab = {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + '</w>', len(vocab))
    for tok in ('<|startoftext|>', '<|endoftext|>'):
        vocab[tok] = len(vocab)
    os.makedirs(path, exist_ok=True)
    vf, mf = osp.join(path, 'vocab.json'), osp.join(path, 'merges.txt')
    with open(vf, 'w') as f:
        json.dump(vocab, f)
    with open(mf, 'w') as f:
        f.write('#version: 0.2\n')
    tok = CLIPTokenizer(vf, mf, model_max_length=max_length,
                        pad_token='<|endoftext|>')
    tok.save_pretrained(path)
    return len(vocab)


def make_tiny_sd(path, image_size=16, seed=0, max_length=16):
    """A Stable-Diffusion-style folder: UNet2DConditionModel (16/32
    channels, one cross-attention level), a 2-layer CLIP text encoder
    (width 32), a character tokenizer and the tiny VAE; SD's scaled-linear
    schedule."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    vae = tiny_vae(seed=seed)
    vae.save_pretrained(osp.join(path, 'vae'))
    n_vocab = _tiny_tokenizer(osp.join(path, 'tokenizer'), max_length)
    torch.manual_seed(seed + 1)
    CLIPTextModel(CLIPTextConfig(
        vocab_size=n_vocab, hidden_size=32, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=max_length, bos_token_id=n_vocab - 2,
        eos_token_id=n_vocab - 1, pad_token_id=n_vocab - 1,
    )).save_pretrained(osp.join(path, 'text_encoder'))
    torch.manual_seed(seed + 2)
    UNet2DConditionModel(
        sample_size=image_size // 2, in_channels=4, out_channels=4,
        layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
        up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=4,
    ).save_pretrained(osp.join(path, 'unet'))
    _scheduler(path, beta_schedule='scaled_linear', beta_start=0.00085,
               beta_end=0.012)
    return path
