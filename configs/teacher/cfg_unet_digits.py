# The digits CFG teacher: python tools/train.py configs/teacher/cfg_unet_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/cfg_unet_digits.py',
    '../_base_/schedules/teacher_3k.py',
    '../_base_/digits_runtime.py',
]
# the training-time grid at 16 DDIM steps: at the default 64 (x 2 network
# evaluations for w != 0) each grid would cost about 30 training iterations
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(_base_.sample_grid_hook, steps=16),
]
