# Meng et al. stage 1 on DiT-XL/2 256x256 (class-conditional ImageNet-1k,
# latent 4x32x32) from a local diffusers folder; ImageNet train images in
# class folders (data/imagenet/train/<wnid>/*.JPEG, sorted wnids = DiT's
# labels). Batch 256 in total (8 GPUs x 32, DiT's batch), 50k updates, Adam
# lr 1e-4 annealed linearly to 0, grad clip 1 (the ImageNet-64 settings).
#   bash tools/dist_train.sh configs/guided_distill/guided_distill_dit_xl2_256.py 8 --amp
_base_ = [
    '../_base_/datasets/image_folder.py',
    '../_base_/models/guidance_distiller_dit_xl2_256.py',
    '../_base_/schedules/guided_distill_50k.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/imagenet/train'
num_classes = 1000
image_shape = (4, 32, 32)
train_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, image_size=256, channels=3))
default_hooks = dict(checkpoint=dict(interval=5000))
# the lr above is for a total batch of 256 (8 GPUs x 32); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=256)
