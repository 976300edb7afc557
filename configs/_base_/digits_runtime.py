# The runtime of the digits configs: mmengine's defaults
# (default_runtime.py) plus training feedback, a sample grid every 500
# iterations (PNG files under <work_dir>/<timestamp>/vis_data/vis_image/,
# and in TensorBoard / WandB when those backends are added to
# vis_backends) and the FID-1k validation of evaluation/digits_val.py with
# the best checkpoint kept (best_FID-1k_*.pth). Neither draws from the
# training random state: runs with and without them train the same weights.
_base_ = ['./default_runtime.py', './evaluation/digits_val.py']
sample_grid_hook = dict(type='SampleGridHook', interval=500, per_class=8,
                        guidance=2.0, seed=0, cell=32)
custom_hooks = [dict(type='PortableCheckpointHook'), sample_grid_hook]
default_hooks = dict(checkpoint=dict(save_best='auto', rule='less'))
