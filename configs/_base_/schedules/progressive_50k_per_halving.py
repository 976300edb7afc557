# Stage 2 for CIFAR-10 / ImageNet 64 (Salimans & Ho): 50k updates per
# halving, Adam, lr annealed linearly to 0 within each halving (the hook
# restarts this scheduler and Adam's state at every halving), grad clip 1,
# no EMA. max_iters = 50k x number of halvings (set in the child config).
iters_per_stage = 50000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500000,
                 val_interval=10**9)
optim_wrapper = dict(
    type='SafeOptimWrapper',
    max_consecutive=5,
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='Adam', lr=5e-5),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=iters_per_stage),
]
