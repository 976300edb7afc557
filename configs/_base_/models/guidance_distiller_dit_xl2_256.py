# Meng et al. stage 1 on DiT-XL/2 256x256: a w-conditioned copy of the
# teacher of ./dit_xl2_256.py (weights from the diffusers folder).
_base_ = ['./dit_xl2_256.py']
model = dict(
    _delete_=True,
    type='GuidanceDistiller',
    teacher={{_base_.model}},
    teacher_ckpt=None,  # weights come from the diffusers folder
    w_min=0.0,
    w_max=4.0,
    loss=_base_.eps_loss,
    p_drop=0.0,
    p_replace=0.0,
    ema=dict(decay=0.9999),
    default_sample=dict(steps=64, guidance=3.0, sampler='ddim'),
    data_preprocessor=_base_.latent_preprocessor)
