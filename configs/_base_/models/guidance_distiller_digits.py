# Meng et al. stage 1 on digits: a w-conditioned copy of the digits CFG
# teacher (configs/_base_/models/cfg_unet_digits.py).
_base_ = ['./cfg_unet_digits.py']
model = dict(
    _delete_=True,
    type='GuidanceDistiller',
    teacher={{_base_.model}},
    teacher_ckpt='checkpoints/digits_teacher.pth',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    p_drop=0.0,
    p_replace=0.0,
    ema=dict(decay=0.999),
    default_sample=dict(steps=16, guidance=2.0, sampler='ddim'),
)
