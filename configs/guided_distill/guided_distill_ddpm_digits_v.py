# Stage 1 on the real-format digits teacher with a v-prediction student
# (Salimans & Ho, section 4): the eps teacher of guided_distill_ddpm_digits.py
# distilled into a student that outputs v. The student starts as the teacher
# (its output read as eps) and its readout moves to v over the first
# reparam_iters updates (GuidanceDistiller); the loss is truncated-SNR
# weighted, the weighting of Salimans & Ho's v students.
#   python tools/train.py configs/guided_distill/guided_distill_ddpm_digits_v.py
_base_ = ['./guided_distill_ddpm_digits.py']
model = dict(
    student_prediction_type='v',
    reparam_iters=500,
    loss=dict(type='GuidedOutputL2Loss', weighting='snr_trunc'))
