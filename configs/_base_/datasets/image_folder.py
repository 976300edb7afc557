# Class-folder images on disk (root/<class>/*.png), e.g. CIFAR-10 exported
# to PNG. Override data_root, image_size and channels in the child config.
data_root = 'data/cifar10/train'
num_classes = 10
image_shape = (3, 32, 32)
train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ImageFolderDataset',
        data_root=data_root,
        image_size=32,
        channels=3),
)
