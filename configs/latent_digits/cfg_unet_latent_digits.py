# The latent digits CFG teacher: the digits CompactUNet recipe (v, cosine,
# p_uncond 0.1) on 4-channel 4x4 latents.
#   python tools/train.py configs/latent_digits/cfg_unet_latent_digits.py
_base_ = [
    '../_base_/models/cfg_unet_digits.py',
    '../_base_/schedules/teacher_3k.py',
    '../_base_/default_runtime.py',
    './_base_latent_digits.py',
]
model = dict(denoiser=dict(in_channels=4),
             image_shape={{_base_.latent_shape}},
             data_preprocessor={{_base_.latent_preprocessor}})
