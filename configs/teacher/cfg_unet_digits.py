# The digits CFG teacher: python tools/train.py configs/teacher/cfg_unet_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/cfg_unet_digits.py',
    '../_base_/schedules/teacher_3k.py',
    '../_base_/digits_runtime.py',
]
