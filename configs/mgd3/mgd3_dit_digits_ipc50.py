# MGD3 with the latent DiT of digits, 50 images per class:
#   python tools/synthesize.py configs/mgd3/mgd3_dit_digits_ipc50.py --evaluate
_base_ = './_base_mgd3_dit_digits.py'
synthesis = dict(ipc=50)
out_dir = 'work_dirs/mgd3/dit_digits_ipc50'
