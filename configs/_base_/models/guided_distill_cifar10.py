# Distillers for a CIFAR-10 32x32 CFG teacher (a CompactUNet of 35 M
# parameters, v-prediction, cosine schedule). Stage 1 (GuidanceDistiller)
# and stage 2 (ProgressiveDistiller) share the architecture; the student
# adds the zero-initialised w-embedding.
_denoiser = dict(
    type='CompactUNet',
    in_channels=3,
    base_channels=128,
    channel_mult=(1, 2, 2, 2),
    num_res_blocks=3,
    attn_levels=(1, ),
    num_classes=10,
    dropout=0.0)
teacher = dict(
    type='CFGDiffusion',
    denoiser=_denoiser,
    num_classes=10,
    image_shape=(3, 32, 32),
    schedule=dict(type='cosine'),
    prediction_type='v')
stage1 = dict(
    type='GuidanceDistiller',
    teacher=teacher,
    teacher_ckpt='checkpoints/cifar10_teacher.pth',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=0.3, sampler='ddim'))
stage2 = dict(
    type='ProgressiveDistiller',
    student=dict(_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_cifar10/iter_50000.pth',
    num_classes=10,
    image_shape=(3, 32, 32),
    num_steps=4096,
    schedule=dict(type='cosine'),
    prediction_type='v',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=None,
    default_sample=dict(guidance=0.3, sampler='ddim'))
