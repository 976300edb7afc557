# A pixel-space diffusers UNet2DModel teacher (class-conditional through
# num_class_embeds = classes + 1, the last one null; or unconditional) from
# a local folder (unet/ + scheduler/). model: the teacher; stages 1 and 2
# are guidance_distiller_diffusers_unet2d_pixel.py and
# progressive_distiller_diffusers_unet2d_pixel.py, as for DiT / SD. Set the
# model path, the data set and image_shape in the child config.
unet_path = 'checkpoints/ddpm-unet2d'
ddpm_schedule = dict(type='ddpm', beta_schedule='linear', beta_start=1e-4,
                     beta_end=0.02, num_train_timesteps=1000)
student_denoiser = dict(type='DiffusersUNet2D', pretrained=unet_path)
model = dict(
    type='DiffusersCFGDiffusion',
    denoiser=dict(type='DiffusersUNet2D', pretrained=unet_path),
    default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))
eps_loss = dict(type='GuidedOutputL2Loss', weighting='snr')
