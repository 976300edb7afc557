# guided_distill_sd15_512.py sharded over the ranks (torch FSDP2 through
# DistillFSDP): the student, its EMA, gradients and Adam moments are split
# across the processes; the frozen teacher is replicated in bf16 (or sharded
# too with shard_teacher=True). Checkpoints are written gathered (the
# unsharded format: tools/test.py, sample.py and export.py read them).
#   bash tools/dist_train.sh configs/guided_distill/guided_distill_sd15_512_fsdp.py 8 --amp
_base_ = ['./guided_distill_sd15_512.py']
model = dict(teacher=dict(denoiser=dict(torch_dtype='bfloat16')))
model_wrapper_cfg = dict(type='DistillFSDP', shard_teacher=False)
