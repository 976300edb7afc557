# scikit-learn's handwritten digits (shipped in the wheel): 1437 train /
# 360 test real 8x8 images, 10 classes, scaled to [-1, 1].
num_classes = 10
image_shape = (1, 8, 8)
train_dataloader = dict(
    batch_size=128,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='train'),
)
