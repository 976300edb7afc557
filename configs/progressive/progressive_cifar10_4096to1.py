# Stage 2 on CIFAR-10 32x32 (Salimans & Ho's 8192 -> 1 sampling steps):
# the stage-1 student sampled with 8192 steps is the first teacher; students
# of 4096, 2048, ..., 1 steps (the name gives the student steps), 50k
# updates each (13 halvings), batch 128 in total (8 GPUs x 16), Adam lr 5e-5
# annealed linearly to 0 per halving.
#   bash tools/dist_train.sh configs/progressive/progressive_cifar10_4096to1.py 8
_base_ = [
    '../_base_/datasets/image_folder.py',
    '../_base_/models/progressive_distiller_cifar10.py',
    '../_base_/schedules/progressive_50k_per_halving.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=16)
train_cfg = dict(max_iters=13 * 50000)
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
]
default_hooks = dict(checkpoint=dict(interval=5000))
# the lr above is for a total batch of 128 (8 GPUs x 16); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=128)
