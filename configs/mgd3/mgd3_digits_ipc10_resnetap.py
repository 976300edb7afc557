# MGD3 digits IPC 10, evaluated with a small ResNetAP instead of the ConvNet:
#   python tools/synthesize.py configs/mgd3/mgd3_digits_ipc10_resnetap.py \
#       --evaluate
_base_ = './mgd3_digits_ipc10.py'
evaluation = dict(classifiers=[
    dict(type='ResNetAP', widths=(32, 64), blocks=(1, 1))
])
