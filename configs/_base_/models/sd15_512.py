# Stable-Diffusion-1.5-style text-to-image at 512x512 from a local diffusers
# folder (unet/ UNet2DConditionModel 860M, vae/ AutoencoderKL (latents
# 4x64x64, scaling 0.18215), text_encoder/ CLIP ViT-L/14 text model,
# tokenizer/, scheduler/ scaled-linear betas 0.00085..0.012, epsilon).
# Text CFG: the null condition is the empty prompt; the guidance embedding
# of the student is the UNet's native time_cond_proj_dim path (as LCM).
sd_path = 'checkpoints/stable-diffusion-v1-5'
ddpm_schedule = dict(type='ddpm', beta_schedule='scaled_linear',
                     beta_start=0.00085, beta_end=0.012,
                     num_train_timesteps=1000)
latent_preprocessor = dict(type='LatentDataPreprocessor', vae=sd_path,
                           text_encoder=sd_path)
teacher_dtype = None  # 'float16' / 'bfloat16': frozen teacher in half
student_denoiser = dict(type='DiffusersTextUNet', pretrained=sd_path,
                        gradient_checkpointing=True, guidance_cond_dim=256)
teacher = dict(
    type='TextCFGDiffusion',
    denoiser=dict(type='DiffusersTextUNet', pretrained=sd_path,
                  torch_dtype=teacher_dtype),
    data_preprocessor=latent_preprocessor,
    # the usual guidance_scale 7.5 = Meng's w 6.5
    default_sample=dict(steps=50, guidance=6.5, sampler='ddim'))
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
stage1 = dict(
    type='GuidanceDistiller',
    teacher=teacher,
    teacher_ckpt=None,
    # Meng et al. sample w over a wide range for text models (LCM: [5, 15])
    w_min=2.0,
    w_max=14.0,
    loss=eps_loss,
    # conditioning replacement (drop to the empty prompt / another caption)
    # needs the distillers to take the teacher's condition_provider(); off
    # until then (the class-label provider would be wrong for prompts)
    p_drop=0.0,
    p_replace=0.0,
    ema=dict(decay=0.9999),
    default_sample=dict(steps=32, guidance=6.5, sampler='ddim'),
    data_preprocessor=latent_preprocessor)
stage2 = dict(
    type='ProgressiveDistiller',
    student=dict(student_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_sd15_512/iter_20000.pth',
    num_classes=0,
    image_shape=(4, 64, 64),
    num_steps=16,
    schedule=ddpm_schedule,
    prediction_type='eps',
    w_min=2.0,
    w_max=14.0,
    loss=eps_loss,
    ema=None,
    default_sample=dict(guidance=6.5, sampler='ddim'),
    data_preprocessor=latent_preprocessor)
