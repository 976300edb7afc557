# Stage 2 on digits: progressive distillation of the stage-1 student (the
# teacher's CompactUNet of configs/_base_/models/cfg_unet_digits.py plus the
# guidance embedding). N (student steps of the first halving) is num_steps.
_base_ = ['./cfg_unet_digits.py']
model = dict(
    _delete_=True,
    type='ProgressiveDistiller',
    student=dict(_base_.model.denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_digits/iter_1500.pth',
    num_classes=_base_.model.num_classes,
    image_shape=_base_.model.image_shape,
    num_steps=32,
    schedule=_base_.model.schedule,
    prediction_type=_base_.model.prediction_type,
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=None,
    default_sample=dict(guidance=2.0, sampler='ddim'),
)
