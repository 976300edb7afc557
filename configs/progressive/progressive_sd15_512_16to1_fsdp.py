# progressive_sd15_512_16to1.py sharded over the ranks (DistillFSDP): the
# student and Adam's moments split across the processes, the stage-2 teacher
# (the stage-1 student) sharded too, as it is a second full-size network.
#   bash tools/dist_train.sh configs/progressive/progressive_sd15_512_16to1_fsdp.py 8 --amp
_base_ = ['./progressive_sd15_512_16to1.py']
model_wrapper_cfg = dict(type='DistillFSDP', shard_teacher=True)
