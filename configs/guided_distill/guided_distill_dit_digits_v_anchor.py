# Stage 1 of the latent DiT's v student, anchored at w = 0: the recipe of
# guided_distill_dit_digits_v.py, four times as long (6000 iterations, lr
# 3e-4 linearly to 0) and with nine tenths of each batch at w = 0 exactly
# (p_w_min = 0.9, the target there is the conditional teacher itself), so
# the student keeps the teacher's unguided output while it learns w in
# (0, 4]: learning the guided range costs this small DiT's unguided output
# more than the pixel UNet's (model_zoo.md: 3000 iterations at p_w_min = 0.75
# leave the 8-step student of stage 2 at 6.91, these settings at 6.24).
# Stage 2: progressive_dit_digits_v_anchor_128to1.py.
#   python tools/train.py configs/guided_distill/guided_distill_dit_digits_v_anchor.py
_base_ = ['./guided_distill_dit_digits_v.py']
model = dict(p_w_min=0.9)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
train_cfg = dict(max_iters=6000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
         begin=0, end=6000),
]
