# Stage 2 on digits: progressive distillation of the stage-1 student
# (same CompactUNet, plus the guidance embedding).
model = dict(
    type='ProgressiveDistiller',
    student=dict(
        type='CompactUNet',
        in_channels=1,
        base_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        num_classes=10,
        guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_digits/iter_1500.pth',
    num_classes=10,
    image_shape=(1, 8, 8),
    num_steps=32,
    schedule=dict(type='cosine'),
    prediction_type='v',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=None,
    default_sample=dict(guidance=2.0, sampler='ddim'),
)
