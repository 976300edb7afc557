# Stage 2 on DiT-XL/2 256x256: progressive distillation of the stage-1
# student (its 64-step DDIM sampler is the first teacher) down to 1 step:
# students of 32, 16, 8, 4, 2, 1 steps, 50k updates each (Salimans & Ho),
# batch 256 in total (8 GPUs x 32), Adam lr 1e-4 annealed to 0 per halving.
#   bash tools/dist_train.sh configs/progressive/progressive_dit_xl2_256_32to1.py 8 --amp
_base_ = [
    '../_base_/datasets/image_folder.py',
    '../_base_/models/progressive_distiller_dit_xl2_256.py',
    '../_base_/schedules/progressive_50k_per_halving.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/imagenet/train'
num_classes = 1000
image_shape = (4, 32, 32)
train_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, image_size=256, channels=3))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
train_cfg = dict(max_iters=6 * 50000)
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
]
default_hooks = dict(checkpoint=dict(interval=5000))
# the lr above is for a total batch of 256 (8 GPUs x 32); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=256)
