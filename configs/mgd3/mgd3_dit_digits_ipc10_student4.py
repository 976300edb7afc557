# MGD3 with the distilled 4-step v student of the latent DiT of digits
# (configs/progressive/progressive_dit_digits_v_32to1.py, shipped as
# checkpoints/dit_digits_student_4step.pth) as the generator:
# one network evaluation per step (w is an input) on the student's own
# 4-step DDIM grid instead of 50 CFG-DDPM steps of the teacher (100
# evaluations). Mode guidance keeps its form on the student's steps (the
# guidance term lambda * sigma_post * (m - x_hat0) added to the DDIM update
# of every step k > t_stop, sigma_post the DDPM posterior std of the step);
# lambda, t_stop and w are chosen on the validation split with the grids
# below (t_stop in [0, 4): k = 3 .. 0).
#   python tools/synthesize.py configs/mgd3/mgd3_dit_digits_ipc10_student4.py --evaluate
_base_ = './mgd3_dit_digits_ipc10.py'
generator = dict(
    _delete_=True,
    type='DistilledStudentGenerator',
    checkpoint='checkpoints/dit_digits_student_4step.pth',
    config='configs/progressive/progressive_dit_digits_v_32to1.py',
    device='auto',
    vae_batch_size=500)
synthesis = dict(steps=4, sampler='ddim', t_stop=2)
selection = dict(rows=dict(
    d=dict(fixed=dict(t_stop=0, init='noise'),
           grid=dict(lam=[0.1, 0.3, 1.0, 3.0], guidance=[0.0, 1.0, 2.0])),
    e=dict(fixed=dict(init='noise'),
           grid=dict(lam=[0.1, 0.3, 1.0, 3.0], t_stop=[1, 2],
                     guidance=[0.0, 1.0, 2.0]))))
out_dir = 'work_dirs/mgd3/dit_digits_ipc10_student4'
