# Stage 2 on ImageNet 64x64 (Salimans & Ho's 1024 -> 1 sampling steps): the
# stage-1 student's 1024-step sampler is the first teacher; students of
# 512, 256, ..., 1 steps (the name gives the student steps), 50k updates
# each (10 halvings), batch 2048 in total (64 GPUs x 32), Adam lr 1e-4
# annealed linearly to 0 per halving.
#   bash tools/dist_train.sh configs/progressive/progressive_imagenet64_512to1.py 64
_base_ = [
    '../_base_/datasets/image_folder.py',
    '../_base_/models/progressive_distiller_imagenet64.py',
    '../_base_/schedules/progressive_50k_per_halving.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/imagenet64/train'
num_classes = 1000
image_shape = (3, 64, 64)
train_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, image_size=64, channels=3))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
train_cfg = dict(max_iters=10 * 50000)
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
]
default_hooks = dict(checkpoint=dict(interval=5000))
# the lr above is for a total batch of 2048 (64 GPUs x 32); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=2048)
