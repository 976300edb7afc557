# Stage 1 of the real-format digits teacher's v student, anchored at w = 0:
# the v recipe of guided_distill_ddpm_digits_v.py with the w-embedding at the
# base learning rate (x1, not x30), 6000 iterations (lr 3e-4 linearly to 0;
# after 3000 the eps -> v readout change is less settled and the 8-step
# student of stage 2 is 2.55 instead of 2.45, model_zoo.md) and three
# quarters of each batch at w = 0 exactly (p_w_min = 0.75: the target there
# is the conditional teacher itself), so the student keeps the teacher's
# unguided output while it learns w in (0, 4] (model_zoo.md, "Anchored v
# students"). Stage 2: progressive_ddpm_digits_v_anchor_128to1.py.
#   python tools/train.py configs/guided_distill/guided_distill_ddpm_digits_v_anchor.py
_base_ = ['./guided_distill_ddpm_digits_v.py']
model = dict(p_w_min=0.75)
optim_wrapper = dict(
    optimizer=dict(lr=3e-4),
    paramwise_cfg=dict(custom_keys=dict(guidance_emb=dict(lr_mult=1.0))))
train_cfg = dict(max_iters=6000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=6000),
]
