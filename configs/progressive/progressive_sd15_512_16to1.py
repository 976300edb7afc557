# Stage 2 on a Stable-Diffusion-1.5-style model at 512x512: the stage-1
# student's 32-step sampler is the first teacher; students of 16, 8, 4, 2, 1
# steps (Meng et al. report 1-4 steps in latent space), 10k updates each,
# batch 64 in total (8 GPUs x 8), Adam lr 1e-5 annealed to 0 per halving.
#   bash tools/dist_train.sh configs/progressive/progressive_sd15_512_16to1.py 8 --amp
_base_ = [
    '../_base_/models/progressive_distiller_sd15_512.py',
    '../_base_/schedules/progressive_50k_per_halving.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/captions'
image_shape = (4, 64, 64)
iters_per_stage = 10000
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CaptionImageDataset', data_root=data_root,
                 image_size=512))
optim_wrapper = dict(optimizer=dict(lr=1e-5))
train_cfg = dict(max_iters=5 * iters_per_stage)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=iters_per_stage),
]
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage=iters_per_stage),
]
default_hooks = dict(checkpoint=dict(interval=2000))
# the lr above is for a total batch of 64 (8 GPUs x 8); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=64)
