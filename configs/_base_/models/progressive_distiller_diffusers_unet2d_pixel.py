# Stage 2 on the pixel-space diffusers UNet2DModel of
# ./diffusers_unet2d_pixel.py: progressive distillation of the stage-1
# student (plus the guidance embedding), N = num_steps student steps first.
_base_ = ['./diffusers_unet2d_pixel.py']
model = dict(
    _delete_=True,
    type='ProgressiveDistiller',
    student=dict(_base_.student_denoiser, guidance_embed=True),
    teacher_ckpt=None,
    num_classes=10,
    image_shape=(3, 32, 32),
    num_steps=32,
    schedule=_base_.ddpm_schedule,
    prediction_type='eps',
    w_min=0.0,
    w_max=4.0,
    loss=_base_.eps_loss,
    ema=None,
    default_sample=dict(guidance=2.0, sampler='ddim'))
