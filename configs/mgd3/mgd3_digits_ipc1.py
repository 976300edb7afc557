# MGD3 digits, 1 image(s) per class:
#   python tools/synthesize.py configs/mgd3/mgd3_digits_ipc1.py --evaluate
_base_ = './_base_mgd3_digits.py'
synthesis = dict(ipc=1)
out_dir = 'work_dirs/mgd3/digits_ipc1'
