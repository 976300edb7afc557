train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000, val_interval=10**9)
optim_wrapper = dict(
    type='SafeOptimWrapper',
    max_consecutive=5,
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.0, foreach=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=3000,
         eta_min=1e-5),
]
