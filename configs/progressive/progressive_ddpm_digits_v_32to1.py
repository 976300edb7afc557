# Stage 2 of the v student of guided_distill_ddpm_digits_v.py: progressive
# distillation 32 -> 1 steps of a v-prediction student of the eps teacher
# folder checkpoints/ddpm-unet2d-digits (the stage-1 checkpoint records the
# parameterisation; a contradicting prediction_type is refused).
#   python tools/train.py configs/progressive/progressive_ddpm_digits_v_32to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = ['./progressive_ddpm_digits_32to1.py']
model = dict(
    teacher_ckpt='work_dirs/guided_distill_ddpm_digits_v/iter_1500.pth',
    prediction_type='v',
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'))
