# Meng et al. stage 1 on the real-format digits teacher: the DDPM folder
# checkpoints/ddpm-unet2d-digits (a diffusers UNet2DModel, eps-prediction,
# linear betas 1e-4 .. 0.02 over 1000 steps); the teacher is the folder
# alone, no project-specific teacher file.
#   python tools/train.py configs/guided_distill/guided_distill_ddpm_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/guidance_distiller_diffusers_unet2d_pixel.py',
    '../_base_/schedules/guided_distill_1500.py',
    '../_base_/digits_runtime.py',
]
model = dict(
    teacher=dict(denoiser=dict(pretrained='checkpoints/ddpm-unet2d-digits')),
    ema=dict(decay=0.999),
    default_sample=dict(steps=16, guidance=2.0, sampler='ddim'))
# as for the CompactUNet student: the zero-initialised w-embedding at 30x
optim_wrapper = dict(paramwise_cfg=dict(
    custom_keys=dict(guidance_emb=dict(lr_mult=30.0))))
default_hooks = dict(checkpoint=dict(interval=500))
train_cfg = dict(val_interval=500)
