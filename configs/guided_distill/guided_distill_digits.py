# Meng et al. stage 1 on digits: w-conditioned student of the digits teacher.
#   python tools/train.py configs/guided_distill/guided_distill_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/guidance_distiller_digits.py',
    '../_base_/schedules/guided_distill_1500.py',
    '../_base_/digits_runtime.py',
]
# The zero-initialised w-embedding learns at 30x the backbone's rate: the
# backbone starts at the converged teacher, the embedding from nothing. On
# digits this closes most of the w = 0 gap to the teacher (FID between
# student and teacher samples at 32 DDIM steps, 5000 samples: 2.31 with one
# lr, 1000 iterations; 1.22 at 10x; 0.58 at 10x and 3000 iterations; 0.44
# at 30x and 3000 iterations; docs/distillation.md).
optim_wrapper = dict(paramwise_cfg=dict(
    custom_keys=dict(guidance_emb=dict(lr_mult=30.0))))
default_hooks = dict(checkpoint=dict(interval=500))
# the FID-1k validation (16 steps, about 2 s on 2 CPU cores) every 500
# iterations; the best checkpoint is kept as best_FID-1k_*.pth
train_cfg = dict(val_interval=500)
