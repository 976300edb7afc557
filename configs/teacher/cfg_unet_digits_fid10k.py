# FID of 10k digits samples (4-step DDIM, w = 2), the timing benchmark of
# docs/evaluation.md:
#   python tools/test.py configs/teacher/cfg_unet_digits_fid10k.py CKPT
#   torchrun --nproc_per_node 2 tools/test.py \
#       configs/teacher/cfg_unet_digits_fid10k.py CKPT --launcher pytorch
_base_ = ['./cfg_unet_digits_eval.py']
test_evaluator = dict(
    _delete_=True,
    type='Evaluator',
    metrics=[
        dict(type='FID', fake_nums=10000, sample_model='ema',
             extractor=dict(type='classifier',
                            checkpoint='checkpoints/digits_classifier.pth'),
             sample_kwargs=dict(steps=4, guidance=2.0, sampler='ddim')),
    ])
