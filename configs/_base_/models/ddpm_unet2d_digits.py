# A real-format teacher for digits: a class-conditional diffusers UNet2DModel
# (num_class_embeds = 10 + 1, the last index the null class), eps-prediction
# on the DDPM linear schedule (betas 1e-4 .. 0.02, 1000 steps) that
# google/ddpm-cifar10-32 and DiT use; trained from scratch with condition
# dropout 0.1, then written as a diffusers folder (unet/, scheduler/,
# model_index.json) by tools/export.py --layout ddpm.
ddpm_scheduler = dict(num_train_timesteps=1000, beta_schedule='linear',
                      beta_start=1e-4, beta_end=0.02,
                      prediction_type='epsilon')
unet_config = dict(
    sample_size=8, in_channels=1, out_channels=1,
    block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
    up_block_types=('AttnUpBlock2D', 'UpBlock2D'),
    attention_head_dim=8, norm_num_groups=8, num_class_embeds=11)
model = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersUNet2D', model_config=unet_config,
                  scheduler=ddpm_scheduler),
    loss=dict(type='GuidedOutputL2Loss', weighting='snr'),  # eps-MSE
    p_uncond=0.1,
    ema=dict(decay=0.999),
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
