# Meng et al. stage 1 on the pixel-space diffusers UNet2DModel teacher of
# ./diffusers_unet2d_pixel.py.
_base_ = ['./diffusers_unet2d_pixel.py']
model = dict(
    _delete_=True,
    type='GuidanceDistiller',
    teacher={{_base_.model}},
    teacher_ckpt=None,
    w_min=0.0,
    w_max=4.0,
    loss=_base_.eps_loss,
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
