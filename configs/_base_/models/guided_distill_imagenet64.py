# Distillers for an ImageNet 64x64 CFG teacher (CompactUNet, 1000 classes,
# v-prediction, cosine schedule); stage 1 and stage 2 share the
# architecture.
_denoiser = dict(
    type='CompactUNet',
    in_channels=3,
    base_channels=192,
    channel_mult=(1, 2, 3, 4),
    num_res_blocks=3,
    attn_levels=(2, 3),
    num_classes=1000,
    dropout=0.0)
teacher = dict(
    type='CFGDiffusion',
    denoiser=_denoiser,
    num_classes=1000,
    image_shape=(3, 64, 64),
    schedule=dict(type='cosine'),
    prediction_type='v')
stage1 = dict(
    type='GuidanceDistiller',
    teacher=teacher,
    teacher_ckpt='checkpoints/imagenet64_teacher.pth',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=0.3, sampler='ddim'))
stage2 = dict(
    type='ProgressiveDistiller',
    student=dict(_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_imagenet64/iter_50000.pth',
    num_classes=1000,
    image_shape=(3, 64, 64),
    num_steps=512,
    schedule=dict(type='cosine'),
    prediction_type='v',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=None,
    default_sample=dict(guidance=0.3, sampler='ddim'))
