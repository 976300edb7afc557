# MGD3 digits, 10 images per class, modes found on the digits classifier's
# features instead of pixels (guidance targets: the pixel mean of each
# feature cluster, or its medoid):
#   python tools/synthesize.py \
#       configs/mgd3/mgd3_digits_ipc10_features.py --evaluate
_base_ = './mgd3_digits_ipc10.py'
mode_discovery = dict(embedding=dict(type='classifier'), target='members_mean')
# row e as chosen on the validation split (tools/mgd3_select.py)
synthesis = dict(lam=3.0, t_stop=37, guidance=0.0)
out_dir = 'work_dirs/mgd3/digits_ipc10_features'
# rows c, d, e choose the guidance target too; a, b, f are the default rows
_target = {'mode_discovery.target': ['members_mean', 'medoid']}
selection = dict(rows=dict(
    c=dict(fixed=dict(lam=0.0, init='nearest_real'),
           grid=dict(guidance=[0.0, 1.0, 2.0], **_target)),
    d=dict(fixed=dict(t_stop=0, init='noise'),
           grid=dict(lam=[0.3, 1.0, 3.0], guidance=[0.0, 1.0, 2.0],
                     **_target)),
    e=dict(fixed=dict(init='noise'),
           grid=dict(lam=[0.3, 1.0, 3.0], t_stop=[25, 37],
                     guidance=[0.0, 1.0, 2.0], **_target))))
