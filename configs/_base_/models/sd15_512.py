# Stable-Diffusion-1.5-style text-to-image at 512x512 from a local diffusers
# folder (unet/ UNet2DConditionModel 860M, vae/ AutoencoderKL (latents
# 4x64x64, scaling 0.18215), text_encoder/ CLIP ViT-L/14 text model,
# tokenizer/, scheduler/ scaled-linear betas 0.00085..0.012, epsilon).
# Text CFG: the null condition is the empty prompt; the guidance embedding
# of the student is the UNet's native time_cond_proj_dim path (as LCM).
# model: the teacher; stages 1 and 2 are guidance_distiller_sd15_512.py and
# progressive_distiller_sd15_512.py.
sd_path = 'checkpoints/stable-diffusion-v1-5'
ddpm_schedule = dict(type='ddpm', beta_schedule='scaled_linear',
                     beta_start=0.00085, beta_end=0.012,
                     num_train_timesteps=1000)
latent_preprocessor = dict(type='LatentDataPreprocessor', vae=sd_path,
                           text_encoder=sd_path)
teacher_dtype = None  # 'float16' / 'bfloat16': frozen teacher in half
student_denoiser = dict(type='DiffusersTextUNet', pretrained=sd_path,
                        gradient_checkpointing=True, guidance_cond_dim=256)
model = dict(
    type='TextCFGDiffusion',
    denoiser=dict(type='DiffusersTextUNet', pretrained=sd_path,
                  torch_dtype=teacher_dtype),
    data_preprocessor=latent_preprocessor,
    # the usual guidance_scale 7.5 = Meng's w 6.5
    default_sample=dict(steps=50, guidance=6.5, sampler='ddim'))
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
