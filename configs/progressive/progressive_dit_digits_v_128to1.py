# Stage 2 on the latent DiT of digits from a 128-step start, as the pixel
# zoo does: progressive distillation 128 -> 1 steps (8 halvings x 500
# iterations) of the v student of guided_distill_dit_digits_v.py.
#   python tools/train.py configs/progressive/progressive_dit_digits_v_128to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = ['./progressive_dit_digits_v_32to1.py']
model = dict(num_steps=128)
train_cfg = dict(max_iters=8 * 500)
