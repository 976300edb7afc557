# Meng et al. stage 1 on digits: w-conditioned student of the digits teacher.
#   python tools/train.py configs/guided_distill/guided_distill_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/guidance_distiller_digits.py',
    '../_base_/schedules/guided_distill_1500.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(interval=500))
