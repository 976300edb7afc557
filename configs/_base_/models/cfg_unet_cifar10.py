# A CIFAR-10 32x32 CFG teacher: a CompactUNet of 35 M parameters,
# v-prediction, cosine schedule (the model of the stage-1 and stage-2
# distillers in guidance_distiller_cifar10.py and
# progressive_distiller_cifar10.py).
model = dict(
    type='CFGDiffusion',
    denoiser=dict(
        type='CompactUNet',
        in_channels=3,
        base_channels=128,
        channel_mult=(1, 2, 2, 2),
        num_res_blocks=3,
        attn_levels=(1, ),
        num_classes=10,
        dropout=0.0),
    num_classes=10,
    image_shape=(3, 32, 32),
    schedule=dict(type='cosine'),
    prediction_type='v')
