# Stage 2 on latent digits: progressive distillation of the stage-1 student
# (its 64-step sampler is the first teacher) to 32, 16, 8, 4, 2, 1 steps
# (work_dir/student_{N}step.pth).
#   python tools/train.py \
#       configs/latent_digits/progressive_latent_digits_32to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = [
    '../_base_/models/progressive_distiller_digits.py',
    '../_base_/schedules/progressive_6x500.py',
    '../_base_/default_runtime.py',
    './_base_latent_digits.py',
]
model = dict(student=dict(in_channels=4),
             image_shape={{_base_.latent_shape}},
             teacher_ckpt='work_dirs/guided_distill_latent_digits/'
             'iter_1500.pth',
             data_preprocessor={{_base_.latent_preprocessor}})
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
]
default_hooks = dict(checkpoint=dict(interval=500))
