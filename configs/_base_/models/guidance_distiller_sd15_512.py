# Meng et al. stage 1 on the SD-1.5-style model of ./sd15_512.py: a
# w-conditioned copy of the text-to-image teacher.
_base_ = ['./sd15_512.py']
model = dict(
    _delete_=True,
    type='GuidanceDistiller',
    teacher={{_base_.model}},
    teacher_ckpt=None,
    # Meng et al. sample w over a wide range for text models (LCM: [5, 15])
    w_min=2.0,
    w_max=14.0,
    loss=_base_.eps_loss,
    # conditioning replacement (drop to the empty prompt / another caption)
    # needs the distillers to take the teacher's condition_provider(); off
    # until then (the class-label provider would be wrong for prompts)
    p_drop=0.0,
    p_replace=0.0,
    ema=dict(decay=0.9999),
    default_sample=dict(steps=32, guidance=6.5, sampler='ddim'),
    data_preprocessor=_base_.latent_preprocessor)
