# Meng et al. stage 1 on ImageNet 64x64: a w-conditioned copy of the CFG
# teacher of ./cfg_unet_imagenet64.py.
_base_ = ['./cfg_unet_imagenet64.py']
model = dict(
    _delete_=True,
    type='GuidanceDistiller',
    teacher={{_base_.model}},
    teacher_ckpt='checkpoints/imagenet64_teacher.pth',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=0.3, sampler='ddim'))
