# Stage 2 of the anchored latent DiT student
# (guided_distill_dit_digits_v_anchor.py): 128 -> 1 steps with nine
# tenths of each batch at w = 0 (p_w_min = 0.9) and longer few-step
# halvings: 500 iterations for the 128-, 64- and 32-step students, 1500 for
# 16, 3000 for 8 and 4, 1500 for 2 and 1 (12000 in all; max_iters is their
# sum). param_scheduler describes the first stage; the hook stretches it to
# each stage's length.
#   python tools/train.py configs/progressive/progressive_dit_digits_v_anchor_128to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = ['./progressive_dit_digits_v_128to1.py']
model = dict(
    teacher_ckpt='work_dirs/guided_distill_dit_digits_v_anchor/iter_6000.pth',
    p_w_min=0.9)
stages = [(128, 500), (64, 500), (32, 500), (16, 1500),
          (8, 3000), (4, 3000), (2, 1500), (1, 1500)]
train_cfg = dict(max_iters=sum(iters for _, iters in stages))
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', stages=stages),
]
