# Meng et al. stage 1 on the latent DiT of digits (checkpoints/dit-digits:
# transformer/ + vae/ + scheduler/, eps-prediction on the linear DDPM betas;
# the teacher is the folder alone) into a v-prediction student: the student
# starts as the conditional teacher and its readout moves from eps to v over
# the first reparam_iters updates; w ~ U[0, 4]; the w-embedding trains at
# the base lr (x1, the choice of the pixel v students' diagnosis).
#   python tools/train.py configs/guided_distill/guided_distill_dit_digits_v.py
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/dit_latent_digits.py',
    '../_base_/schedules/guided_distill_1500.py',
    '../_base_/default_runtime.py',
]
model = dict(
    _delete_=True,
    type='GuidanceDistiller',
    teacher={{_base_.folder_teacher}},
    teacher_ckpt=None,  # weights come from the folder
    w_min=0.0,
    w_max=4.0,
    student_prediction_type='v',
    reparam_iters=500,
    loss={{_base_.eps_loss}},
    ema=dict(decay=0.999),
    default_sample=dict(steps=16, guidance=2.0, sampler='ddim'),
    data_preprocessor={{_base_.latent_preprocessor}})
train_dataloader = dict(dataset=dict(image_size=16))
default_hooks = dict(checkpoint=dict(interval=500))
