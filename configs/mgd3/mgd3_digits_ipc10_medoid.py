# MGD3 digits, 10 images per class, pixel-space k-means modes with the
# cluster's medoid (the real image nearest the centre) as the guidance target
# instead of the centre (a blurry average of the cluster):
#   python tools/synthesize.py \
#       configs/mgd3/mgd3_digits_ipc10_medoid.py --evaluate
_base_ = './mgd3_digits_ipc10.py'
mode_discovery = dict(target='medoid')
out_dir = 'work_dirs/mgd3/digits_ipc10_medoid'
# rows d and e search the guidance settings again for this target
selection = dict(rows=dict(
    d=dict(fixed=dict(t_stop=0, init='noise'),
           grid=dict(lam=[0.3, 1.0, 3.0], guidance=[0.0, 1.0, 2.0])),
    e=dict(fixed=dict(init='noise'),
           grid=dict(lam=[0.3, 1.0, 3.0], t_stop=[25, 37],
                     guidance=[0.0, 1.0, 2.0]))))
