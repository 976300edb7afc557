# Meng et al. stage 1 on CIFAR-10 32x32 from class folders
# (data/cifar10/train/<class>/*.png). Batch 128 in total (8 GPUs x 16):
#   bash tools/dist_train.sh configs/guided_distill/guided_distill_cifar10.py 8
_base_ = [
    '../_base_/datasets/image_folder.py',
    '../_base_/models/guidance_distiller_cifar10.py',
    '../_base_/schedules/guided_distill_50k.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=16)
default_hooks = dict(checkpoint=dict(interval=5000))
# the lr above is for a total batch of 128 (8 GPUs x 16); with another process
# count or batch, tools/train.py --auto-scale-lr scales it linearly
auto_scale_lr = dict(enable=False, base_batch_size=128)
