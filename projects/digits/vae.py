"""A small diffusers ``AutoencoderKL`` for the digits, the VAE of the
latent-space digits pipeline (``tools/latent_digits.py``).

The 8x8 digits are upsampled bilinearly to 16x16 (as
``DigitsDataset(image_size=16)``) and encoded to 4x4x4 latents (three
encoder levels, 4x spatial down-sampling). The digits classifier that
measures FID and accuracy takes 8x8 images, so decoded 16x16 images are
brought back with :func:`downsample_exact`, the least-squares inverse of
that bilinear upsampling: ``downsample_exact(upsample(x)) == x``, so the
real images reach the classifier unchanged and only the VAE's own loss
shows in the reconstruction floor.
"""
import os.path as osp
import time

import torch
import torch.nn.functional as F

from mmdistill.utils import UserError


def bilinear_matrix(n_in, n_out):
    """The (n_out, n_in) matrix of 1-D linear interpolation as
    ``F.interpolate(..., mode='bilinear', align_corners=False)`` applies it
    along each axis."""
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]
    out = F.interpolate(eye, size=n_out, mode='linear', align_corners=False)
    return out[:, 0, :].T.contiguous()


def upsample(images, size):
    """(B, C, s, s) -> (B, C, size, size), bilinear as ``DigitsDataset``."""
    return F.interpolate(images.float(), size=(size, size), mode='bilinear',
                         align_corners=False)


def downsample_exact(images, size=8):
    """(B, C, S, S) -> (B, C, size, size) by the pseudo-inverse of the
    bilinear ``size -> S`` upsampling along each axis, clamped to [-1, 1]."""
    s = images.shape[-1]
    if images.shape[-2] != s or s < size:
        raise UserError(f'downsample_exact needs square images of at least '
                        f'{size}x{size}, got {tuple(images.shape[-2:])}')
    if s == size:
        return images.float().clamp(-1, 1)
    p = torch.linalg.pinv(bilinear_matrix(size, s)).to(torch.float32)
    out = torch.einsum('ij,bcjk,lk->bcil', p, images.float(), p)
    return out.clamp(-1, 1)


def build_digits_vae(latent_channels=4, block_out_channels=(16, 32, 32),
                     layers_per_block=1, image_size=16, seed=0):
    """A randomly initialised one-channel ``AutoencoderKL`` with
    ``len(block_out_channels)`` levels (down-sampling
    2^(levels - 1))."""
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    n = len(block_out_channels)
    return AutoencoderKL(
        in_channels=1, out_channels=1,
        down_block_types=('DownEncoderBlock2D', ) * n,
        up_block_types=('UpDecoderBlock2D', ) * n,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block, latent_channels=latent_channels,
        norm_num_groups=min(8, block_out_channels[0]),
        sample_size=image_size)


def kl_per_element(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over all elements."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()


def train_digits_vae(out_dir, iters=2000, batch_size=64, lr=1e-3,
                     kl_weight=1e-4, image_size=16, latent_channels=4,
                     block_out_channels=(16, 32, 32), seed=0,
                     log_every=250, log=print):
    """Train the VAE on the 1437 training digits (upsampled to
    ``image_size``) and save it as a diffusers folder ``out_dir/vae``.

    Loss: per-pixel MSE of the reconstruction from a posterior sample plus
    ``kl_weight`` x the per-element KL to N(0, 1); Adam, lr annealed with a
    cosine to lr / 10. Afterwards ``shift_factor`` and ``scaling_factor``
    are set to the mean and 1 / std of the posterior means of the training
    set, so the latents a diffusion model sees have zero mean and unit
    variance (the convention of :class:`VAEWrapper`).

    Returns:
        dict: final losses, latent statistics and the training seconds.
    """
    from mmdistill.datasets import DigitsDataset
    if iters < 1 or batch_size < 1:
        raise UserError(f'VAE iters and batch size must be positive, got '
                        f'{iters} and {batch_size}')
    x_all = DigitsDataset('train', image_size=image_size).images
    vae = build_digits_vae(latent_channels, block_out_channels,
                           image_size=image_size, seed=seed)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters,
                                                       eta_min=lr / 10)
    g = torch.Generator().manual_seed(seed)
    vae.train()
    t0 = time.time()
    for it in range(1, iters + 1):
        idx = torch.randint(0, len(x_all), (batch_size, ), generator=g)
        x = x_all[idx]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        mse = F.mse_loss(rec, x)
        kl = kl_per_element(post.mean, post.logvar)
        loss = mse + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        if log is not None and (it % log_every == 0 or it == iters):
            log(f'[vae] iter {it}/{iters}: mse {mse.item():.5f} kl '
                f'{kl.item():.3f} ({time.time() - t0:.0f} s)')
    seconds = time.time() - t0
    vae.eval()
    with torch.no_grad():
        means = torch.cat([vae.encode(x_all[i:i + 500]).latent_dist.mean
                           for i in range(0, len(x_all), 500)])
        shift = float(means.mean())
        scale = float(1.0 / (means - shift).std())
        vae.register_to_config(shift_factor=shift, scaling_factor=scale)
        rec = torch.cat([vae.decode(means[i:i + 500]).sample
                         for i in range(0, len(means), 500)])
        mse_mean = float(F.mse_loss(rec.clamp(-1, 1), x_all))
    vae.save_pretrained(osp.join(out_dir, 'vae'))
    return dict(mse=mse_mean, kl=float(kl.detach()), shift_factor=shift,
                scaling_factor=scale, latent_shape=list(means.shape[1:]),
                seconds=seconds, iters=iters)
