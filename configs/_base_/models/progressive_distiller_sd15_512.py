# Stage 2 on the SD-1.5-style model of ./sd15_512.py: progressive
# distillation of the stage-1 student (the UNet with its time_cond_proj_dim
# guidance embedding) in the 4x64x64 latent space, N = num_steps first.
_base_ = ['./sd15_512.py']
model = dict(
    _delete_=True,
    type='ProgressiveDistiller',
    student=dict(_base_.student_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_sd15_512/iter_20000.pth',
    num_classes=0,
    image_shape=(4, 64, 64),
    num_steps=16,
    schedule=_base_.ddpm_schedule,
    prediction_type='eps',
    w_min=2.0,
    w_max=14.0,
    loss=_base_.eps_loss,
    ema=None,
    default_sample=dict(guidance=6.5, sampler='ddim'),
    data_preprocessor=_base_.latent_preprocessor)
