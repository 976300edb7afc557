# Evaluate the digits teacher (FID / IS / accuracy, 64-step DDIM, w = 0, 1,
# 2, 4, 2000 samples each):
#   python tools/test.py configs/teacher/cfg_unet_digits_eval.py CKPT
_base_ = [
    './cfg_unet_digits.py',
    '../_base_/evaluation/digits_generation.py',
]
