# Meng et al. stage 1 on a Stable-Diffusion-1.5-style text-to-image model at
# 512x512 (latent 4x64x64) from a local diffusers folder, on image-caption
# pairs (data/captions/metadata.jsonl: {"file_name", "text"} per line).
# w ~ U[2, 14], 10% of captions dropped to the empty prompt, batch 64 in
# total (8 GPUs x 8), 20k updates, Adam lr 1e-5 (full fine-tuning of SD),
# grad clip 1, gradient checkpointing of the student.
#   bash tools/dist_train.sh configs/guided_distill/guided_distill_sd15_512.py 8 --amp
_base_ = [
    '../_base_/models/guidance_distiller_sd15_512.py',
    '../_base_/schedules/guided_distill_50k.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/captions'
image_shape = (4, 64, 64)
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CaptionImageDataset', data_root=data_root,
                 image_size=512))
train_cfg = dict(max_iters=20000)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=20000),
]
default_hooks = dict(checkpoint=dict(interval=2000))
# the lr above is for a total batch of 64 (8 GPUs x 8); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=64)
