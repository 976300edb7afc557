# Meng et al. stage 1 on latent digits: w-conditioned student (w ~ U[0, 4])
# of the latent teacher, the pixel digits recipe otherwise.
#   python tools/train.py configs/latent_digits/guided_distill_latent_digits.py
_base_ = [
    '../_base_/models/guidance_distiller_digits.py',
    '../_base_/schedules/guided_distill_1500.py',
    '../_base_/default_runtime.py',
    './_base_latent_digits.py',
]
model = dict(
    teacher=dict(denoiser=dict(in_channels=4),
                 image_shape={{_base_.latent_shape}},
                 data_preprocessor={{_base_.latent_preprocessor}}),
    teacher_ckpt='work_dirs/cfg_unet_latent_digits/iter_3000.pth',
    data_preprocessor={{_base_.latent_preprocessor}})
default_hooks = dict(checkpoint=dict(interval=500))
