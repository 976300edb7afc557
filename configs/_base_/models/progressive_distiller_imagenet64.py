# Stage 2 on ImageNet 64x64: progressive distillation of the stage-1 student
# (the teacher's architecture of ./cfg_unet_imagenet64.py plus the
# zero-initialised w-embedding), N = num_steps student steps first.
_base_ = ['./cfg_unet_imagenet64.py']
model = dict(
    _delete_=True,
    type='ProgressiveDistiller',
    student=dict(_base_.model.denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_imagenet64/iter_50000.pth',
    num_classes=_base_.model.num_classes,
    image_shape=_base_.model.image_shape,
    num_steps=512,
    schedule=_base_.model.schedule,
    prediction_type=_base_.model.prediction_type,
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=None,
    default_sample=dict(guidance=0.3, sampler='ddim'))
