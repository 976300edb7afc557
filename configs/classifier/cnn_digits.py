# The digits feature extractor for FID / IS / sample accuracy:
#   python tools/train.py configs/classifier/cnn_digits.py
# then copy 'net.*' of the last checkpoint to checkpoints/digits_classifier.pth
# (see docs/evaluation.md).
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='ImageClassifier',
    net=dict(type='DigitsCNN', in_channels=1, num_classes=10, width=32,
             feat_dim=128, dropout=0.2),
    label_smoothing=0.0)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1500, val_interval=10**9)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=1500,
         eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=1500))
