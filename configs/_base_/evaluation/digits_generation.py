# Generative evaluation on digits: the real images are the 360 test images,
# features from the digits CNN (checkpoints/digits_classifier.pth).
test_dataloader = dict(
    batch_size=500,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='test'),
)
_extractor = dict(type='classifier',
                  checkpoint='checkpoints/digits_classifier.pth')
_common = dict(fake_nums=2000, sample_model='ema', extractor=_extractor,
               real_stats_cache='work_dirs/fid_stats')
_sweep = [dict(steps=64, guidance=w, sampler='ddim') for w in (0, 1, 2, 4)]
test_evaluator = dict(
    type='Evaluator',
    metrics=[
        dict(type='FID', sweep=_sweep, **_common),
        dict(type='IS', splits=10, sweep=_sweep, **_common),
        dict(type='SampleAccuracy', sweep=_sweep, **_common),
    ])
test_cfg = dict(type='GenerativeTestLoop', batch_size=500)
