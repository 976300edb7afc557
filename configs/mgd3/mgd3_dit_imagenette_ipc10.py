# MGD3 on ImageNette (class folders) with DiT-XL/2 256 and sd-vae-ft-mse,
# the paper's settings: 50-step DDPM, CFG scale 4.0 (w = 3 in Meng's
# convention), lambda = 0.1, t_stop = 25, k-means modes on VAE latents.
# Needs a GPU and local copies of the models (nothing is downloaded):
#   checkpoints/DiT-XL-2-256/transformer  (facebook/DiT-XL-2-256, subfolder)
#   checkpoints/sd-vae-ft-mse              (stabilityai/sd-vae-ft-mse)
#   data/imagenette/train/<wnid>/*.JPEG, data/imagenette/val/<wnid>/*.JPEG
#   python tools/synthesize.py configs/mgd3/mgd3_dit_imagenette_ipc10.py
_base_ = './_base_mgd3_digits.py'
seed = 0
generator = dict(
    _delete_=True,
    type='DiTLatentGenerator',
    transformer='checkpoints/DiT-XL-2-256/transformer',
    vae='checkpoints/sd-vae-ft-mse',
    # ImageNet indices of the ImageNette classes in sorted wnid order
    # (tench, English springer, cassette player, chain saw, church,
    # French horn, garbage truck, gas pump, golf ball, parachute)
    class_labels=[0, 217, 482, 491, 497, 566, 569, 571, 574, 701],
    device='auto',
    dtype='float16',
    vae_batch_size=32)
real_data = dict(
    _delete_=True,
    type='ImageFolderDataset',
    data_root='data/imagenette/train',
    image_size=256,
    channels=3)
mode_discovery = dict(type='KMeansModes', n_init=10)
synthesis = dict(ipc=10, steps=50, guidance=3.0, lam=0.1, t_stop=25,
                 sampler='ddpm', batch_size=16)
evaluation = dict(
    test_data=dict(
        _delete_=True,
        type='ImageFolderDataset',
        data_root='data/imagenette/val',
        image_size=128,
        channels=3),
    classifiers=[dict(type='ResNetAP', widths=(64, 128, 256, 512),
                      blocks=(1, 1, 1, 1))],
    image_size=128,
    channels=3,
    iterations=2000,
    flip=True,
    shift=8)
out_dir = 'work_dirs/mgd3/dit_imagenette_ipc10'
