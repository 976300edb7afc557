# Meng et al. stage 1 on ImageNet 64x64 from class folders
# (data/imagenet64/train/<wnid>/*.png). Batch 2048 in total (64 GPUs x 32):
#   bash tools/dist_train.sh configs/guided_distill/guided_distill_imagenet64.py 64
_base_ = [
    '../_base_/datasets/image_folder.py',
    '../_base_/models/guidance_distiller_imagenet64.py',
    '../_base_/schedules/guided_distill_50k.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/imagenet64/train'
num_classes = 1000
image_shape = (3, 64, 64)
train_dataloader = dict(
    batch_size=32,
    dataset=dict(data_root=data_root, image_size=64, channels=3))
default_hooks = dict(checkpoint=dict(interval=5000))
# the lr above is for a total batch of 2048 (64 GPUs x 32); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=2048)
