# Latent-space digits: the 8x8 digits upsampled to 16x16 and encoded by a
# small AutoencoderKL (4x4x4 latents) that tools/latent_digits.py trains and
# saves as a diffusers folder; the diffusion runs on the latents of a latent
# cache (posterior means, zero mean / unit variance by the VAE's shift and
# scaling factors) and the VAE decodes only for samples and metrics.
_base_ = ['../_base_/datasets/digits.py']
vae_path = 'work_dirs/latent_digits/vae'
cache_dir = 'work_dirs/latent_digits/latent_cache'
latent_shape = (4, 4, 4)
latent_preprocessor = dict(type='LatentDataPreprocessor', vae=vae_path,
                           encode_inputs=False)
train_dataloader = dict(dataset=dict(
    _delete_=True, type='LatentCacheDataset', cache_dir=cache_dir))
