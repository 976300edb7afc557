# MGD3 digits, 50 image(s) per class:
#   python tools/synthesize.py configs/mgd3/mgd3_digits_ipc50.py --evaluate
_base_ = './_base_mgd3_digits.py'
# lam / t_stop / guidance: chosen on the validation split by
# tools/mgd3_select.py (paper default: lam=0.1, t_stop=25, guidance=2.0)
synthesis = dict(ipc=50, lam=0.1, t_stop=37, guidance=1.0)
out_dir = 'work_dirs/mgd3/digits_ipc50'
