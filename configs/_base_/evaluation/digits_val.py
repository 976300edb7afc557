# A cheap validation pass on digits: FID of 1000 samples at w = 0 and the
# model's default steps (a progressive student: its current N) against the
# 360 test images, features from the digits CNN. Validation runs at the end
# of training (the schedules' val_interval is 10**9) and feeds save_best.
val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='test'),
)
val_evaluator = dict(
    type='Evaluator',
    metrics=[
        dict(type='FID', fake_nums=1000, sample_model='ema',
             sample_kwargs=dict(guidance=0.0),
             extractor=dict(type='classifier',
                            checkpoint='checkpoints/digits_classifier.pth'),
             real_stats_cache='work_dirs/fid_stats'),
    ])
val_cfg = dict(type='GenerativeValLoop', batch_size=500)
