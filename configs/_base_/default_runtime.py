default_scope = 'mmdistill'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=1000,
        by_epoch=False,
        max_keep_ckpts=3,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
model_wrapper_cfg = dict(type='DistillDataParallel')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
custom_hooks = [dict(type='PortableCheckpointHook')]
# mmdistill's runner (resume on current torch, CPU/gloo distributed, atomic
# checkpoints, ...) for any entry point: `custom_imports` imports mmdistill
# and its engine when the config is loaded, and `runner_type` makes both an
# OpenMMLab train.py (RUNNERS.build) and a plain mmengine Runner.from_cfg(cfg)
# build a DistillRunner.
custom_imports = dict(imports=['mmdistill', 'mmdistill.engine'],
                      allow_failed_imports=False)
runner_type = 'DistillRunner'
