# Stage 2 on DiT-XL/2 256x256: progressive distillation of the stage-1
# student (./dit_xl2_256.py's transformer plus the guidance embedding) in
# the 4x32x32 latent space, N = num_steps student steps first.
_base_ = ['./dit_xl2_256.py']
model = dict(
    _delete_=True,
    type='ProgressiveDistiller',
    student=dict(_base_.student_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_dit_xl2_256/iter_50000.pth',
    num_classes=1000,
    image_shape=(4, 32, 32),
    num_steps=32,
    schedule=_base_.ddpm_schedule,
    prediction_type='eps',
    w_min=0.0,
    w_max=4.0,
    loss=_base_.eps_loss,
    ema=None,
    default_sample=dict(guidance=3.0, sampler='ddim'),
    data_preprocessor=_base_.latent_preprocessor)
