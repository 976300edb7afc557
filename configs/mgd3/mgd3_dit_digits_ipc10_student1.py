# The distilled 1-step student of the latent DiT of digits as the MGD3
# generator. A single DDIM step from t = 1 lands on t = 0, where the DDPM
# posterior std is 0, so the guidance term lambda * sigma_post * (m - x_hat0)
# vanishes and a noised-mode start at t_init < 1 rounds back to t = 1: one
# step leaves no room for mode guidance. This config is the unguided 1-step
# generator (w chosen on the validation split, row b), the cost floor.
#   python tools/synthesize.py configs/mgd3/mgd3_dit_digits_ipc10_student1.py --evaluate
_base_ = './mgd3_dit_digits_ipc10_student4.py'
generator = dict(checkpoint='checkpoints/dit_digits_student_1step.pth')
synthesis = dict(steps=1, lam=0.0, t_stop=0)
out_dir = 'work_dirs/mgd3/dit_digits_ipc10_student1'
