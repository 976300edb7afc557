# Stage 2 with a LoRA student: progressive_ddpm_digits_v_32to1.py from the
# (merged) stage-1 LoRA student of guided_distill_ddpm_digits_v_lora.py; at
# every halving the student's update is folded into the weights it shares
# with its teacher and the adapters restart at B = 0.
#   python tools/train.py configs/progressive/progressive_ddpm_digits_v_lora_32to1.py \
#       --cfg-options model.teacher_ckpt=<stage-1 checkpoint>
_base_ = ['./progressive_ddpm_digits_v_32to1.py']
model = dict(
    teacher_ckpt='work_dirs/guided_distill_ddpm_digits_v_lora/iter_1500.pth',
    student_lora=dict(
        rank=8, alpha=8,
        target_modules=['conv1', 'conv2', 'time_emb_proj', 'to_q', 'to_k',
                        'to_v', 'to_out.0']))
