# MGD3 with the latent DiT of digits, 10 images per class:
#   python tools/synthesize.py configs/mgd3/mgd3_dit_digits_ipc10.py --evaluate
_base_ = './_base_mgd3_dit_digits.py'
synthesis = dict(ipc=10)
out_dir = 'work_dirs/mgd3/dit_digits_ipc10'
