# MGD3 on scikit-learn digits with the pixel-space CFG teacher
# (configs/teacher/cfg_unet_digits.py). Children set synthesis.ipc.
seed = 0
generator = dict(
    type='PixelTeacherGenerator',
    model_config='configs/teacher/cfg_unet_digits.py',
    checkpoint='checkpoints/digits_teacher.pth',
    device='auto')
# the real training split: modes are k-means centres of its pixels
real_data = dict(type='DigitsDataset', split='train')
mode_discovery = dict(type='KMeansModes', n_init=10)  # seed: top-level seed
synthesis = dict(
    source='generator',    # 'real_random' / 'real_full': real baselines
    ipc=10,
    steps=50,
    guidance=2.0,          # CFG w (Meng): (1 + w) x_c - w x_u
    lam=0.1,               # mode guidance scale lambda (0: none)
    t_stop=25,             # guide steps k > t_stop (k = 49 .. 0)
    sampler='ddpm',
    init='noise',          # 'nearest_real': noised real image nearest a mode
    t_init=0.6,            # start time for init='nearest_real'
    batch_size=256)
evaluation = dict(
    test_data=dict(type='DigitsDataset', split='test'),
    classifiers=[dict(type='ConvNet', width=32, depth=2)],
    seeds=(0, 1, 2),
    iterations=500,
    batch_size=64,
    lr=0.01,
    momentum=0.9,
    weight_decay=5e-4,
    milestones=(0.5, 0.75),
    shift=1,
    flip=False,
    # diversity / representativeness also on the digits classifier's features
    feature_extractor=dict(type='classifier'))
# hyper-parameter selection (tools/mgd3_select.py): a stratified 20 %
# validation part of the training split, never the test split; the grid per
# ablation row is DEFAULT_SELECTION in mmdistill/synthesis/selection.py
selection = dict(holdout=dict(fraction=0.2, seed=0))
