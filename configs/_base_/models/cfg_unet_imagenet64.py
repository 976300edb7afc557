# An ImageNet 64x64 CFG teacher: CompactUNet, 1000 classes, v-prediction,
# cosine schedule (the model of the stage-1 and stage-2 distillers in
# guidance_distiller_imagenet64.py / progressive_distiller_imagenet64.py).
model = dict(
    type='CFGDiffusion',
    denoiser=dict(
        type='CompactUNet',
        in_channels=3,
        base_channels=192,
        channel_mult=(1, 2, 3, 4),
        num_res_blocks=3,
        attn_levels=(2, 3),
        num_classes=1000,
        dropout=0.0),
    num_classes=1000,
    image_shape=(3, 64, 64),
    schedule=dict(type='cosine'),
    prediction_type='v')
