# MGD3 as the paper runs it, at digits scale: the latent DiT of
# checkpoints/dit-digits (DiT + VAE, eps, linear DDPM betas) sampled with
# 50-step DDPM and CFG, modes = per-class k-means centres of the VAE latent
# means x scaling factor (after the shift), mode guidance on the DDPM
# posterior mean with the posterior std. CFG combines the clean estimates
# of all 4 latent channels, as diffusers' DiTPipeline does (the original DiT
# code guides 3 of 4). Images live in the VAE's 16x16 space (the digits
# upsampled bilinearly): the classifiers are trained and tested at 16x16.
# Children set synthesis.ipc (and the settings selected on the validation
# split by tools/mgd3_select.py).
_base_ = './_base_mgd3_digits.py'
generator = dict(
    _delete_=True,
    type='DiTLatentGenerator',
    transformer='checkpoints/dit-digits',
    vae='checkpoints/dit-digits',
    device='auto',
    vae_batch_size=500)
real_data = dict(type='DigitsDataset', split='train', image_size=16)
synthesis = dict(steps=50, guidance=2.0, lam=0.1, t_stop=25, sampler='ddpm')
evaluation = dict(image_size=16, feature_extractor=None)
# validation-split selection: the digits grid without t_stop = 12 (which won
# at no IPC on the pixel teacher), 42 settings
selection = dict(rows=dict(
    e=dict(fixed=dict(init='noise'),
           grid=dict(lam=[0.1, 0.3, 1.0, 3.0], t_stop=[25, 37],
                     guidance=[0.0, 1.0, 2.0]))))
