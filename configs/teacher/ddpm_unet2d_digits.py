# The real-format digits teacher (diffusers UNet2DModel, eps, DDPM betas):
#   python tools/train.py configs/teacher/ddpm_unet2d_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/ddpm_unet2d_digits.py',
    '../_base_/schedules/teacher_3k.py',
    '../_base_/default_runtime.py',
]
