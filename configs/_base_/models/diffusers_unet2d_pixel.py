# A pixel-space diffusers UNet2DModel teacher (class-conditional through
# num_class_embeds = classes + 1, the last one null; or unconditional) from
# a local folder (unet/ + scheduler/); stage 1 and stage 2 dicts as for
# DiT / SD. Set unet_path, the data set and image_shape in the child config.
unet_path = 'checkpoints/ddpm-unet2d'
ddpm_schedule = dict(type='ddpm', beta_schedule='linear', beta_start=1e-4,
                     beta_end=0.02, num_train_timesteps=1000)
student_denoiser = dict(type='DiffusersUNet2D', pretrained=unet_path)
teacher = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersUNet2D', pretrained=unet_path),
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
stage1 = dict(
    type='GuidanceDistiller',
    teacher=teacher,
    teacher_ckpt=None,
    w_min=0.0,
    w_max=4.0,
    loss=eps_loss,
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
stage2 = dict(
    type='ProgressiveDistiller',
    student=dict(student_denoiser, guidance_embed=True),
    teacher_ckpt=None,
    num_classes=10,
    image_shape=(3, 32, 32),
    num_steps=32,
    schedule=ddpm_schedule,
    prediction_type='eps',
    w_min=0.0,
    w_max=4.0,
    loss=eps_loss,
    ema=None,
    default_sample=dict(guidance=2.0, sampler='ddim'))
