# MGD3 digits, 50 image(s) per class:
#   python tools/synthesize.py configs/mgd3/mgd3_digits_ipc50.py --evaluate
_base_ = './_base_mgd3_digits.py'
synthesis = dict(ipc=50)
out_dir = 'work_dirs/mgd3/digits_ipc50'
