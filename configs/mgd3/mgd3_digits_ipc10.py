# MGD3 digits, 10 image(s) per class:
#   python tools/synthesize.py configs/mgd3/mgd3_digits_ipc10.py --evaluate
_base_ = './_base_mgd3_digits.py'
synthesis = dict(ipc=10)
out_dir = 'work_dirs/mgd3/digits_ipc10'
