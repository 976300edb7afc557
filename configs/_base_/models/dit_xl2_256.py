# DiT-XL/2 256x256 (Peebles & Xie), class-conditional on ImageNet-1k, from a
# local diffusers folder with the facebook/DiT-XL-2-256 layout:
#   transformer/ (DiTTransformer2DModel, 675M; eps + learned variance),
#   vae/ (AutoencoderKL sd-vae-ft-ema, latents 4x32x32), scheduler/ (linear
#   DDPM betas 1e-4..0.02, 1000 steps, epsilon).
# Latent space: images are encoded on the fly by the VAE (or use a latent
# cache, docs/real_teachers.md); the VAE decodes only for samples/metrics.
# model: the teacher; stages 1 and 2 are guidance_distiller_dit_xl2_256.py
# and progressive_distiller_dit_xl2_256.py.
dit_path = 'checkpoints/DiT-XL-2-256'
# the schedule of the folder's scheduler_config.json; stage 2 needs it
# written out (it must match the folder)
ddpm_schedule = dict(type='ddpm', beta_schedule='linear', beta_start=1e-4,
                     beta_end=0.02, num_train_timesteps=1000)
latent_preprocessor = dict(type='LatentDataPreprocessor', vae=dit_path)
# torch_dtype='bfloat16' loads the frozen teacher in half precision
teacher_dtype = None
student_denoiser = dict(type='DiffusersDiT', pretrained=dit_path,
                        gradient_checkpointing=False)
model = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersDiT', pretrained=dit_path,
                  torch_dtype=teacher_dtype),
    data_preprocessor=latent_preprocessor,
    # DiT's usual sampling: cfg scale 4.0 = Meng's w 3.0
    default_sample=dict(steps=64, guidance=3.0, sampler='ddim'))
# eps-prediction: the loss is eps-MSE ('snr' in x space); the x-space
# weightings put ~1/alpha^2 (up to ~2.5e4 at t = 1) on eps errors
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
