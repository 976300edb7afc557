# Stage 1 with a LoRA student (Hu et al.) of the real-format digits teacher:
# guided_distill_ddpm_digits_v.py with peft LoRA adapters (rank 8) on every
# convolution of the ResNet blocks, the attention projections and the time
# projections; only the adapters and the guidance embedding train, and the
# student's frozen weights are the teacher's tensors (one copy in memory).
#   python tools/train.py configs/guided_distill/guided_distill_ddpm_digits_v_lora.py
_base_ = ['./guided_distill_ddpm_digits_v.py']
model = dict(student_lora=dict(
    rank=8, alpha=8,
    target_modules=['conv1', 'conv2', 'time_emb_proj', 'to_q', 'to_k', 'to_v',
                    'to_out.0']))
