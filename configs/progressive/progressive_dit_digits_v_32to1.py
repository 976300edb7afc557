# Stage 2 on the latent DiT of digits: progressive distillation 32 -> 1 steps
# of the v student of guided_distill_dit_digits_v.py (its 64-step DDIM
# sampler is the first teacher); students saved per halving
# (work_dir/student_{N}step.pth).
#   python tools/train.py configs/progressive/progressive_dit_digits_v_32to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = [
    '../_base_/datasets/digits.py',
    '../_base_/models/dit_latent_digits.py',
    '../_base_/schedules/progressive_6x500.py',
    '../_base_/default_runtime.py',
]
model = dict(
    _delete_=True,
    type='ProgressiveDistiller',
    student=dict(_base_.student_denoiser, guidance_embed=True),
    teacher_ckpt='work_dirs/guided_distill_dit_digits_v/iter_1500.pth',
    num_classes=10,
    image_shape=_base_.latent_shape,
    num_steps=32,
    schedule=_base_.ddpm_schedule,
    prediction_type='v',
    w_min=0.0,
    w_max=4.0,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'),
    ema=None,
    default_sample=dict(guidance=2.0, sampler='ddim'),
    data_preprocessor={{_base_.latent_preprocessor}})
train_dataloader = dict(dataset=dict(image_size=16))
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='ProgressiveDistillationHook', n_end=1,
         iters_per_stage={{_base_.iters_per_stage}}),
]
default_hooks = dict(checkpoint=dict(interval=500))
