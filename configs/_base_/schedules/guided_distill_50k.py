# Stage 1 for CIFAR-10 / ImageNet 64: 50k updates, Adam, lr annealed
# linearly to 0, grad clip 1 (the optimisation settings of Salimans & Ho's
# distillation, applied to Meng's stage 1). Only the student is optimised.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=50000,
                 val_interval=10**9)
optim_wrapper = dict(
    type='SafeOptimWrapper',
    max_consecutive=5,
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='Adam', lr=1e-4),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=50000),
]
