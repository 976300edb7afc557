# Stage 2 on digits: progressive distillation of the stage-1 student, whose
# 64-step sampler is the first teacher: students of 32, 16, 8, 4, 2, 1 steps
# (work_dir/student_{N}step.pth).
#   python tools/train.py configs/progressive/progressive_digits_32to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/progressive_distiller_digits.py',
    '../_base_/schedules/progressive_6x500.py',
    '../_base_/digits_runtime.py',
]
# the first student's N is model.num_steps (32, from the _base_ model); the
# hook halves it down to n_end
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
    {{_base_.sample_grid_hook}},
]
default_hooks = dict(checkpoint=dict(interval=500))
