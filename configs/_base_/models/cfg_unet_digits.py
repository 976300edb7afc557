# A compact class-conditional UNet (0.7 M parameters) trained for
# classifier-free guidance: v-prediction, cosine schedule, p_uncond = 0.1.
model = dict(
    type='CFGDiffusion',
    denoiser=dict(
        type='CompactUNet',
        in_channels=1,
        base_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        num_classes=10),
    num_classes=10,
    image_shape=(1, 8, 8),
    schedule=dict(type='cosine'),
    prediction_type='v',
    loss=dict(type='GuidedOutputL2Loss', weighting='v_mse'),
    p_uncond=0.1,
    ema=dict(decay=0.999),
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'),
)
