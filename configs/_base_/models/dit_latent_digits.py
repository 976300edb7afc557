# A real-format latent DiT for digits, MGD3's generator in miniature: a
# class-conditional diffusers DiTTransformer2DModel (eps + learned variance,
# out_channels = 2 x 4, as DiT ships; 6 blocks, width 96, patch 1 on the
# 4x4x4 latents of the digits AutoencoderKL), the null class = 10 (the label
# table's extra row), condition dropout 0.1, linear DDPM betas 1e-4 .. 0.02
# over 1000 steps. The VAE is the folder's vae/ (digits upsampled to 16x16,
# encoded on the fly: latent = scaling x (posterior mean - shift)).
dit_path = 'checkpoints/dit-digits'
ddpm_scheduler = dict(num_train_timesteps=1000, beta_schedule='linear',
                      beta_start=1e-4, beta_end=0.02,
                      prediction_type='epsilon')
ddpm_schedule = dict(type='ddpm', beta_schedule='linear', beta_start=1e-4,
                     beta_end=0.02, num_train_timesteps=1000)
dit_config = dict(
    sample_size=4, patch_size=1, in_channels=4, out_channels=8,
    num_layers=6, num_attention_heads=4, attention_head_dim=24,
    num_embeds_ada_norm=10, norm_type='ada_norm_zero')
latent_shape = (4, 4, 4)
latent_preprocessor = dict(type='LatentDataPreprocessor', vae=dit_path)
model = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersDiT', model_config=dit_config,
                  scheduler=ddpm_scheduler),
    loss=dict(type='GuidedOutputL2Loss', weighting='snr'),  # eps-MSE
    p_uncond=0.1,
    ema=dict(decay=0.999),
    image_shape=latent_shape,
    data_preprocessor=latent_preprocessor,
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
# the trained teacher as users load a pretrained DiT: the folder alone
# (transformer/ + scheduler/ + vae/); stages 1 and 2 distil it
folder_teacher = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersDiT', pretrained=dit_path),
    data_preprocessor=latent_preprocessor,
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
student_denoiser = dict(type='DiffusersDiT', pretrained=dit_path)
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
