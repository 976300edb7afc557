# DiT-XL/2 256x256 (Peebles & Xie), class-conditional on ImageNet-1k, from a
# local diffusers folder with the facebook/DiT-XL-2-256 layout:
#   transformer/ (DiTTransformer2DModel, 675M; eps + learned variance),
#   vae/ (AutoencoderKL sd-vae-ft-ema, latents 4x32x32), scheduler/ (linear
#   DDPM betas 1e-4..0.02, 1000 steps, epsilon).
# Latent space: images are encoded on the fly by the VAE (or use a latent
# cache, docs/real_teachers.md); the VAE decodes only for samples/metrics.
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
teacher = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersDiT', pretrained=dit_path,
                  torch_dtype=teacher_dtype),
    data_preprocessor=latent_preprocessor,
    # DiT's usual sampling: cfg scale 4.0 = Meng's w 3.0
    default_sample=dict(steps=64, guidance=3.0, sampler='ddim'))
# eps-prediction: the loss is eps-MSE ('snr' in x space); the x-space
# weightings put ~1/alpha^2 (up to ~2.5e4 at t = 1) on eps errors
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
stage1 = dict(
    type='GuidanceDistiller',
    teacher=teacher,
    teacher_ckpt=None,  # weights come from the diffusers folder
    w_min=0.0,
    w_max=4.0,
    loss=eps_loss,
    p_drop=0.0,
    p_replace=0.0,
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=3.0, sampler='ddim'),
    data_preprocessor=latent_preprocessor)
stage2 = dict(
    type='ProgressiveDistiller',
    student=dict(student_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_dit_xl2_256/iter_50000.pth',
    num_classes=1000,
    image_shape=(4, 32, 32),
    num_steps=32,
    schedule=ddpm_schedule,
    prediction_type='eps',
    w_min=0.0,
    w_max=4.0,
    loss=eps_loss,
    ema=None,
    default_sample=dict(guidance=3.0, sampler='ddim'),
    data_preprocessor=latent_preprocessor)
