# The digits teacher with a checkpoint write that stalls at iteration 3 (for
# the kill-during-write test; the marker path comes from $STALL_MARKER).
_base_ = ['../../../configs/teacher/cfg_unet_digits.py']
custom_imports = dict(imports=['stall_hook'], allow_failed_imports=False)
custom_hooks = [
    dict(type='PortableCheckpointHook'),
    dict(type='StallCheckpointHook', at=3),
]
