# The real-format latent DiT teacher of digits (../_base_/models/
# dit_latent_digits.py), trained from scratch on the latents of the VAE in
# checkpoints/dit-digits/vae and exported as the DiT folder layout
# (transformer/, vae/, scheduler/, model_index.json); tools/dit_digits.py
# runs VAE, teacher and export.
#   python tools/train.py configs/teacher/dit_latent_digits.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/dit_latent_digits.py',
    '../_base_/schedules/teacher_3k.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(dataset=dict(image_size=16))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=8000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=8000,
         eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=2000))
