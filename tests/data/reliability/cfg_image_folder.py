# The digits teacher trained on a class-folder data set (8x8 grey); the tests
# set data_root with --cfg-options.
_base_ = ['../../../configs/teacher/cfg_unet_digits.py']
train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        _delete_=True,
        type='ImageFolderDataset',
        data_root='missing',
        image_size=8,
        channels=1))
