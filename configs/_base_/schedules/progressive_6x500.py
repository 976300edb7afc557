# Stage 2: six halvings of 500 iterations (32 -> 1 student steps). The
# param_scheduler describes ONE halving: ProgressiveDistillationHook
# restarts it (and clears Adam's state) at every halving.
iters_per_stage = 500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000, val_interval=10**9)
optim_wrapper = dict(
    type='SafeOptimWrapper',
    max_consecutive=5,
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='Adam', lr=2e-4, foreach=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=iters_per_stage),
]
