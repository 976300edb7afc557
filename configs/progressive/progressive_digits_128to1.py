# Stage 2 on digits, the model-zoo recipe: progressive distillation from the
# stage-1 student's 256-step sampler, students of 128, 64, ..., 2, 1 steps,
# 500 iterations per halving (checkpoints/digits_student_{N}step.pth).
#   python tools/train.py configs/progressive/progressive_digits_128to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = ['./progressive_digits_32to1.py']
model = dict(num_steps=128)
train_cfg = dict(max_iters=8 * 500)
