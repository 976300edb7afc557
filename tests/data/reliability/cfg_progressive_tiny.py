# A tiny stage-2 run for the kill-and-resume test: three halvings (4 -> 2 -> 1
# student steps, 3 iterations each) of a small student, from random weights.
_base_ = ['../../../configs/progressive/progressive_digits_32to1.py']
model = dict(teacher_ckpt=None, num_steps=4, student=dict(base_channels=8))
train_cfg = dict(max_iters=9)
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage=3),
]
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.1, by_epoch=False,
         begin=0, end=3),
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=-1))
