"""The main job on the embedded digits data set, end to end:

    teacher (CFG) -> stage 1 (w-conditioned student) -> stage 2 (progressive
    distillation 32 -> 1 steps) -> evaluation report

    python tools/demo.py --work-dir work_dirs/demo      # what `make demo` runs
    python tools/demo.py --teacher-type compact --work-dir work_dirs/demo_c

Writes ``report.md`` (FID / IS / accuracy per step count and w, NFE, ms per
image), sample grids and a FID-vs-NFE plot into the work dir. Each stage is
an ordinary ``tools/train.py`` run of a shipped config; a finished stage is
reused when the demo is run again.

By default (``--teacher-type ddpm``) the teacher is in the format
pretrained models ship in, the path users take: a diffusers ``UNet2DModel``
(eps-prediction, DDPM betas) is trained, written as a pretrained DDPM folder
(``teacher/ddpm-folder``: model_index.json, unet/, scheduler/), and both
stages read the teacher from that folder alone, distilling it into a v
student (``student_prediction_type='v'``: an eps student collapses at one
step). ``--teacher-ckpt FOLDER`` skips the training, e.g. with the shipped
``checkpoints/ddpm-unet2d-digits``. ``--teacher-type compact`` runs the
project's CompactUNet (v-prediction, cosine schedule) instead.
"""
import argparse
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmdistill.apis import cli_main  # noqa: E402
from mmdistill.utils import UserError  # noqa: E402
from projects.digits.report import load_ddpm_teacher  # noqa: E402
from projects.digits.stages import run_stage  # noqa: E402

TEACHER_CFG = 'configs/teacher/cfg_unet_digits.py'
STAGE1_CFG = 'configs/guided_distill/guided_distill_digits.py'
STAGE2_CFG = 'configs/progressive/progressive_digits_32to1.py'
#: the real-format teacher's pipeline (--teacher-type ddpm)
DDPM_CFGS = dict(
    teacher='configs/teacher/ddpm_unet2d_digits.py',
    stage1='configs/guided_distill/guided_distill_ddpm_digits_v.py',
    stage2='configs/progressive/progressive_ddpm_digits_v_32to1.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='mmdistill digits demo')
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--teacher-iters', type=int, default=None)
    p.add_argument('--stage1-iters', type=int, default=None)
    p.add_argument('--iters-per-halving', type=int, default=None)
    p.add_argument('--stage1-config', default=None,
                   help='the stage-1 (guided distillation) config (default: '
                   'the one of --teacher-type)')
    p.add_argument('--stage2-config', default=STAGE2_CFG,
                   help='the stage-2 (progressive) config')
    p.add_argument('--n-start', type=int, default=None,
                   help='first student step count of stage 2 (its teacher '
                   'takes twice as many); a power of two (default: the '
                   "stage-2 config's model.num_steps)")
    p.add_argument('--teacher-type', choices=['compact', 'ddpm'],
                   default='ddpm',
                   help="'ddpm' (default): a diffusers UNet2DModel DDPM "
                   'folder (eps, linear betas), the format of pretrained '
                   "models, distilled into v students; 'compact': the "
                   "project's CompactUNet (v, cosine)")
    p.add_argument('--teacher-ckpt', default=None,
                   help='use this CFG teacher checkpoint (--teacher-type '
                   'ddpm: a DDPM folder) instead of training one')
    p.add_argument('--num-samples', type=int, default=1000,
                   help='generated samples per setting for the metrics')
    p.add_argument('--teacher-steps', type=int, default=64,
                   help='DDIM steps of the reference teacher')
    p.add_argument('--no-report', action='store_true',
                   help='train only (e.g. when tools/eval_digits_zoo.py '
                   'measures the checkpoints afterwards)')
    p.add_argument('--quick', action='store_true',
                   help='a smoke run: tiny iteration counts and samples')
    p.add_argument('--debug', action='store_true')
    return p.parse_args(argv)


def stage2_settings(config):
    """The stage-2 config's N (``model.num_steps``) and the position of
    its ProgressiveDistillationHook in ``custom_hooks`` (for the
    overrides)."""
    from mmdistill.apis import load_config
    cfg = load_config(osp.join(ROOT, config))
    index = [i for i, h in enumerate(cfg.custom_hooks)
             if h.get('type') == 'ProgressiveDistillationHook']
    if len(index) != 1:
        raise UserError(f'{config} needs one ProgressiveDistillationHook in '
                        f'custom_hooks, found {len(index)}')
    return cfg.model.num_steps, index[0]


def export_ddpm_folder(config, checkpoint, folder):
    """The trained UNet2DModel teacher as a pretrained DDPM folder (kept
    when it exists); returns the folder."""
    if not osp.isfile(osp.join(folder, 'model_index.json')):
        from mmdistill.apis import init_model, load_config
        from mmdistill.models.adapters.export import export_teacher_folder
        tmp = folder + '.tmp'
        if osp.isdir(tmp):
            import shutil
            shutil.rmtree(tmp)
        export_teacher_folder(init_model(load_config(config), checkpoint),
                              tmp)
        os.replace(tmp, folder)
    return folder


def load_teacher(config, checkpoint):
    """The trained CompactUNet teacher (its dumped config, else the
    shipped one)."""
    from mmdistill.apis import init_model, load_config
    if not osp.isfile(config):
        config = osp.join(ROOT, TEACHER_CFG)
    return init_model(load_config(config), checkpoint)


@cli_main
def main():
    args = parse_args()
    wd = osp.abspath(args.work_dir)
    os.makedirs(wd, exist_ok=True)
    q = args.quick
    t_iters = args.teacher_iters or (30 if q else 2000)
    s1_iters = args.stage1_iters or (20 if q else 800)
    per_half = args.iters_per_halving or (5 if q else 200)
    n_eval = 100 if q else args.num_samples
    ref_steps = 16 if q else args.teacher_steps
    small = {'model.denoiser.base_channels': 8} if q else {}
    timings = {}

    real = args.teacher_type == 'ddpm'
    teacher_cfg = DDPM_CFGS['teacher'] if real else TEACHER_CFG
    stage1_cfg = args.stage1_config or (
        DDPM_CFGS['stage1'] if real else STAGE1_CFG)
    stage2_cfg = DDPM_CFGS['stage2'] if real and \
        args.stage2_config == STAGE2_CFG else args.stage2_config
    if real and q:
        small = {'model.denoiser.model_config.block_out_channels': (8, 16),
                 'model.denoiser.model_config.norm_num_groups': 4,
                 'model.denoiser.model_config.attention_head_dim': 4}
    n_cfg, hook = stage2_settings(stage2_cfg)
    n_start = n_cfg if args.n_start is None else args.n_start
    if n_start < 1 or n_start & (n_start - 1):
        raise UserError(f'--n-start must be a power of two, got {n_start}')
    n_stages = n_start.bit_length()  # N_start, N_start/2, ..., 1

    t_dir = osp.join(wd, 'teacher')
    t_ckpt = args.teacher_ckpt or osp.join(t_dir, f'iter_{t_iters}.pth')
    exists = osp.isdir(t_ckpt) if real else osp.isfile(t_ckpt)
    if args.teacher_ckpt and not exists:
        raise UserError(f'--teacher-ckpt {t_ckpt} does not exist; give an '
                        'existing CFG teacher ' + (
                            'folder (model_index.json, unet/, scheduler/)'
                            if real else 'checkpoint') + ' or leave it out')
    if not (real and args.teacher_ckpt):
        run_stage('teacher', teacher_cfg, t_dir, t_ckpt, {
            'train_cfg.max_iters': t_iters,
            'default_hooks.checkpoint.interval': t_iters,
            'param_scheduler.0.end': min(100, t_iters // 10),
            'param_scheduler.1.begin': min(100, t_iters // 10),
            'param_scheduler.1.end': t_iters, **small}, timings=timings)
    if real:
        folder = args.teacher_ckpt or export_ddpm_folder(
            osp.join(t_dir, osp.basename(teacher_cfg)), t_ckpt,
            osp.join(t_dir, 'ddpm-folder'))
        teacher_opts = {'model.teacher.denoiser.pretrained': folder}
        student_opts = {'model.student.pretrained': folder}
    else:
        teacher_opts = {'model.teacher_ckpt': t_ckpt, **(
            {'model.teacher.denoiser.base_channels': 8} if q else {})}
        student_opts = {'model.student.base_channels': 8} if q else {}

    s1_dir = osp.join(wd, 'stage1')
    s1_ckpt = osp.join(s1_dir, f'iter_{s1_iters}.pth')
    if real and q:  # a v student finishes its readout change in stage 1
        teacher_opts['model.reparam_iters'] = max(1, s1_iters // 2)
    run_stage('stage1', stage1_cfg, s1_dir, s1_ckpt, {
        'train_cfg.max_iters': s1_iters,
        'default_hooks.checkpoint.interval': s1_iters,
        'param_scheduler.0.end': s1_iters, **teacher_opts},
        timings=timings)

    s2_dir = osp.join(wd, 'progressive')
    s2_ckpt = osp.join(s2_dir, 'student_1step.pth')
    run_stage('progressive', stage2_cfg, s2_dir, s2_ckpt, {
        'model.teacher_ckpt': s1_ckpt, 'model.num_steps': n_start,
        'train_cfg.max_iters': n_stages * per_half,
        f'custom_hooks.{hook}.iters_per_stage': per_half,
        'param_scheduler.0.end': per_half,
        'default_hooks.checkpoint.interval': n_stages * per_half,
        **student_opts}, timings=timings)

    with open(osp.join(wd, 'timings.json'), 'w') as f:
        json.dump(timings, f, indent=1)
    if args.no_report:
        return
    from projects.digits.report import evaluate_and_report
    teacher = load_ddpm_teacher(folder) if real else load_teacher(
        osp.join(t_dir, osp.basename(teacher_cfg)), t_ckpt)
    evaluate_and_report(wd, teacher, s2_dir, n_eval=n_eval,
                        ref_steps=ref_steps, quick=q, timings=timings)
    print(f'[demo] report: {osp.join(wd, "report.md")}')


if __name__ == '__main__':
    main()
