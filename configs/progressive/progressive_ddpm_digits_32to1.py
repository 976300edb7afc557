# Stage 2 on the real-format digits teacher: progressive distillation of the
# stage-1 student of guided_distill_ddpm_digits.py (a diffusers UNet2DModel
# with the guidance embedding, eps-prediction on the DDPM betas), 32 -> 1
# steps (work_dir/student_{N}step.pth).
#   python tools/train.py configs/progressive/progressive_ddpm_digits_32to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/progressive_distiller_diffusers_unet2d_pixel.py',
    '../_base_/schedules/progressive_6x500.py',
    '../_base_/digits_runtime.py',
]
model = dict(
    student=dict(pretrained='checkpoints/ddpm-unet2d-digits'),
    teacher_ckpt='work_dirs/guided_distill_ddpm_digits/iter_1500.pth',
    num_classes=10,
    image_shape=(1, 8, 8))
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
    {{_base_.sample_grid_hook}},
]
default_hooks = dict(checkpoint=dict(interval=500))
