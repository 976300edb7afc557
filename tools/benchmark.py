"""Benchmark mmdistill against the physical ideal and a plain peer.

Everything is measured in one run on one device and reported as ratios;
absolute times are supporting detail. Sections (``--sections``):

- ``sampling``: images/s of the w-conditioned student at 1/2/4/8 steps vs
  the CFG teacher with DDIM at 256 and 64 steps (2 evaluations per step),
  same batch: NFE ratio and wall-clock speed-up.
- ``train``: stage-1 / stage-2 ``train_step`` (OptimWrapper, Adam + grad
  clip) vs the ideal T_fb + T_f(2B) / T_fb + 2 T_f(B), and the plain peer
  stage-1 loop (teacher called twice, autograd on) at the same batch.
- ``memory``: peak RSS of stage 1, stage 2, teacher training and the peer,
  each in a fresh process.
- ``eval``: FID of 4-step student samples (classifier features), 1 process
  (1 and 2 threads) vs 2 processes (torchrun, gloo, 1 thread each).

Weights are random (speed does not depend on them) unless checkpoints are
given. Results are printed and appended as a markdown section to
``--out`` (BENCHMARKS.md).

    python tools/benchmark.py                 # full run, ~5 min on 2 cores
    python tools/benchmark.py --quick --out /tmp/B.md   # seconds
"""
import argparse
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

SECTIONS = ('sampling', 'train', 'memory', 'eval', 'mgd3')
CLASSIFIER = osp.join(ROOT, 'checkpoints', 'digits_classifier.pth')


# ---------------------------------------------------------------- models
def denoiser_cfg(quick):
    """The digits CompactUNet (configs/_base_/models/cfg_unet_digits.py);
    a narrower one in quick mode."""
    return dict(type='CompactUNet', in_channels=1,
                base_channels=8 if quick else 32, channel_mult=(1, 2),
                num_res_blocks=1, num_classes=10)


def teacher_cfg(quick):
    return dict(type='CFGDiffusion', denoiser=denoiser_cfg(quick),
                num_classes=10, image_shape=(1, 8, 8),
                schedule=dict(type='cosine'), prediction_type='v',
                loss=dict(type='GuidedOutputL2Loss', weighting='v_mse'),
                p_uncond=0.1, ema=dict(decay=0.999),
                default_sample=dict(steps=64, guidance=2.0, sampler='ddim'))


def perturb(module, std=0.05, seed=0):
    """Random weights (zero-initialised output layers would give constant
    samples); speed does not depend on the values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def build_teacher(args):
    from mmdistill.registry import MODELS
    from mmdistill.models.distillers.teacher import load_net_weights
    m = MODELS.build(teacher_cfg(args.quick))
    if args.teacher_ckpt:
        load_net_weights(m.net, args.teacher_ckpt)
        m.net_ema.load_state_dict(m.net.state_dict())
    else:
        perturb(m.net)
        m.net_ema.load_state_dict(m.net.state_dict())
    return m.to(args.device)


def build_stage1(args):
    from mmdistill.registry import MODELS
    m = MODELS.build(dict(type='GuidanceDistiller',
                          teacher=teacher_cfg(args.quick),
                          teacher_ckpt=args.teacher_ckpt, w_min=0.0,
                          w_max=4.0, ema=dict(decay=0.999)))
    if not args.teacher_ckpt:
        perturb(m.teacher.net)
        m.net.load_state_dict(m.teacher.net.state_dict(), strict=False)
        perturb(m.net, seed=1)
        m.net_ema.load_state_dict(m.net.state_dict())
    return m.to(args.device)


def build_stage2(args):
    from mmdistill.registry import MODELS
    m = MODELS.build(dict(type='ProgressiveDistiller',
                          student=dict(denoiser_cfg(args.quick),
                                       guidance_embed=True),
                          teacher_ckpt=args.student_ckpt, num_classes=10,
                          image_shape=(1, 8, 8), num_steps=32))
    if not args.student_ckpt:
        perturb(m.net, seed=1)
        m.teacher.net.load_state_dict(m.net.state_dict())
    return m.to(args.device)


def build_student_sampler(args):
    """The distilled student used for sampling: a w-conditioned network
    (stage-2 checkpoint if given); one evaluation per step."""
    return build_stage2(args).eval()


def optim_wrapper_for(model):
    """The stage-1/2 configs' optimizer: Adam lr 2e-4, grad-norm clip 1,
    over the trainable parameters only."""
    from mmengine.optim import OptimWrapper
    params = [p for p in model.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.Adam(params, lr=2e-4),
                        clip_grad=dict(max_norm=1.0))


def make_batch(b, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((b, 1, 8, 8), generator=g) * 2 - 1
    y = torch.randint(0, 10, (b, ), generator=g)
    return dict(inputs=x.to(device), data_samples=y.to(device))


class PlainStage1:
    """The stage-1 objective written the plain way, without mmdistill: the
    teacher is a loaded network (parameters still requiring grad, no
    ``no_grad``/``inference_mode``) called twice, once conditional and once
    unconditional; the target is detached. Cosine schedule, v-prediction,
    SNR-truncated weighting max(alpha^2, sigma^2) in v space, Adam +
    grad-norm clip 1 (the same math as ``GuidanceDistiller``, no EMA)."""

    def __init__(self, teacher_net, student_net, num_classes=10):
        self.teacher, self.student = teacher_net, student_net
        self.teacher.requires_grad_(True)
        self.num_classes = num_classes
        self.opt = torch.optim.Adam(self.student.parameters(), lr=2e-4)

    def step(self, x, y):
        b = x.shape[0]
        t = torch.rand(b, device=x.device) * (1 - 1e-4) + 1e-4
        w = torch.rand(b, device=x.device) * 4.0
        eps = torch.randn_like(x)
        a = torch.cos(math.pi / 2 * t).view(-1, 1, 1, 1)
        s = torch.sin(math.pi / 2 * t).view(-1, 1, 1, 1)
        z = a * x + s * eps
        v_c = self.teacher(z, t, y)
        v_u = self.teacher(z, t, torch.full_like(y, self.num_classes))
        x_c, x_u = a * z - s * v_c, a * z - s * v_u
        wb = w.view(-1, 1, 1, 1)
        x_w = ((1 + wb) * x_c - wb * x_u).detach()
        v_target = (a * z - x_w) / s
        v = self.student(z, t, y, w)
        weight = torch.maximum(a**2, s**2).flatten()
        loss = (weight * (v - v_target).pow(2).flatten(1).mean(1)).mean()
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
        self.opt.step()
        return loss


def build_peer(args, stage1=None):
    """Peer with copies of the stage-1 teacher and student networks (of
    ``stage1`` when given)."""
    import copy
    s1 = stage1 if stage1 is not None else build_stage1(args)
    teacher = copy.deepcopy(s1.teacher.net).train(False)
    student = copy.deepcopy(s1.net).train()
    return PlainStage1(teacher, student)


# ----------------------------------------------------------- measurements
def sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def timed(fn, device):
    def run():
        fn()
        sync(device)
    return run


def interleaved(fns, repeats, warmup, min_round_s=0.05):
    """Median seconds per call of each function in ``fns`` (dict), measured
    in interleaved rounds (one round of every function, ``repeats`` times)
    so that a load change on a shared machine hits all of them alike. Each
    round of a function runs it ``number`` times, chosen so a round lasts
    at least ``min_round_s``."""
    from mmdistill.utils.benchmark import median_time
    numbers = {}
    for k, fn in fns.items():
        for _ in range(max(warmup, 1)):  # the last one sizes the rounds
            t0 = time.perf_counter()
            fn()
            one = time.perf_counter() - t0
        numbers[k] = max(1, int(math.ceil(min_round_s / max(one, 1e-9))))
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(median_time(fn, 1, 0, numbers[k])[0])
    import statistics
    return {k: statistics.median(v) for k, v in times.items()}, numbers


def bench_sampling(args, log):
    from mmdistill.utils.benchmark import (markdown_table, nfe, nfe_ratio,
                                           ratio, speedup_target)
    dev = args.device
    teacher = build_teacher(args).eval()
    student = build_student_sampler(args)
    b = args.sample_batch
    g = torch.Generator().manual_seed(0)
    noise = torch.randn((b, 1, 8, 8), generator=g).to(dev)
    labels = (torch.arange(b) % 10).to(dev)
    t_steps = args.teacher_steps
    s_steps = args.student_steps

    def job(model, steps):
        return timed(lambda: model.sample(labels, noise=noise, steps=steps,
                                          guidance=2.0,
                                          sample_model='orig'), dev)

    fns = {('teacher', n): job(teacher, n) for n in t_steps}
    fns.update({('student', n): job(student, n) for n in s_steps})
    with autocast(args):
        med, numbers = interleaved(fns, args.sample_repeats, 1,
                                   min_round_s=args.min_round_s)
    ips = {k: b / v for k, v in med.items()}
    rows, result = [], dict(batch=b, images_per_s={}, speedup={})
    for (kind, n), v in sorted(ips.items(), key=lambda kv: (
            kv[0][0] != 'teacher', -kv[0][1])):
        rows.append([f'{kind} {"CFG-DDIM" if kind == "teacher" else "DDIM"}'
                     f' {n} steps', nfe(n, kind == 'teacher'), v,
                     med[(kind, n)] * 1000])
        result['images_per_s'][f'{kind}{n}'] = v
    body = markdown_table(['sampler', 'NFE / image', 'images/s',
                           f'ms / batch of {b}'], rows)
    srows = []
    for tn in t_steps:
        for sn in s_steps:
            sp = ratio(ips[('student', sn)], ips[('teacher', tn)])
            nr = nfe_ratio(tn, sn)
            result['speedup'][f'{sn}vs{tn}'] = dict(speedup=sp, nfe_ratio=nr)
            srows.append([f'{sn}-step student vs {tn}-step CFG teacher', nr,
                          sp, ratio(sp, nr)])
    body += '\n\n' + markdown_table(
        ['comparison', 'NFE ratio', 'wall-clock speed-up',
         'speed-up / NFE ratio'], srows)
    if 4 in s_steps and 256 in t_steps:
        sp = result['speedup']['4vs256']['speedup']
        tgt = speedup_target(256, 4)
        body += (f'\n\nTarget: 4-step student >= 0.9 x NFE ratio = '
                 f'{tgt:.1f}x over the 256-step CFG teacher: measured '
                 f'{sp:.1f}x ({"met" if sp >= tgt else "NOT met"}).')
    body += (f'\n\nSame batch ({b}), same device, guidance w = 2, median of '
             f'{args.sample_repeats} interleaved rounds after one warm-up '
             'call each.')
    log(body)
    return body, result


class autocast:
    """bf16 autocast on CUDA with ``--bf16``; a no-op otherwise."""

    def __init__(self, args):
        self.ctx = torch.autocast('cuda', dtype=torch.bfloat16) if (
            args.bf16 and str(args.device).startswith('cuda')) else None

    def __enter__(self):
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            return self.ctx.__exit__(*exc)


def bench_train(args, log):
    from mmdistill.utils.benchmark import (ideal_stage1, ideal_stage2,
                                           markdown_table, ratio)
    dev, b = args.device, args.train_batch
    data = make_batch(b, dev)
    s1, s2 = build_stage1(args).train(), build_stage2(args).train()
    teacher = build_teacher(args).train()
    ow1, ow2, owt = (optim_wrapper_for(m) for m in (s1, s2, teacher))
    peer = build_peer(args, s1)
    x, y = data['inputs'], data['data_samples']

    # the ideal's parts, on the stage-1 student / teacher networks
    z = torch.randn_like(x)
    t = torch.rand(b, device=dev).clamp_min(1e-4)
    w = torch.rand(b, device=dev) * 4
    target = torch.randn_like(x)
    z2, t2 = torch.cat([z, z]), torch.cat([t, t])
    y2 = torch.cat([y, torch.full_like(y, 10)])
    fb_net = s1.net
    ow_fb = optim_wrapper_for(fb_net)

    def student_fb():
        out = fb_net(z, t, y, w)
        ow_fb.update_params((out - target).pow(2).mean())

    def teacher_f(n2):
        net = s1.teacher.net
        zz, tt, yy = (z2, t2, y2) if n2 else (z, t, y)

        def run():
            with torch.no_grad():
                net(zz, tt, yy)
        return run

    def stage2_teacher_f():
        with torch.no_grad():
            s2.teacher.net(z, t, y, w)

    fns = dict(
        t_fb=timed(student_fb, dev),
        t_f_b=timed(teacher_f(False), dev),
        t_f_2b=timed(teacher_f(True), dev),
        t_f_b_w=timed(stage2_teacher_f, dev),
        stage1=timed(lambda: s1.train_step(data, ow1), dev),
        stage2=timed(lambda: s2.train_step(data, ow2), dev),
        teacher_train=timed(lambda: teacher.train_step(data, owt), dev),
        peer=timed(lambda: peer.step(x, y), dev),
    )
    with autocast(args):
        med, _ = interleaved(fns, args.repeats, 2,
                             min_round_s=args.min_round_s)
    i1 = ideal_stage1(med['t_fb'], med['t_f_2b'])
    i2 = ideal_stage2(med['t_fb'], med['t_f_b_w'])
    res = dict(batch=b, times_ms={k: v * 1000 for k, v in med.items()},
               stage1_vs_ideal=ratio(med['stage1'], i1),
               stage2_vs_ideal=ratio(med['stage2'], i2),
               stage1_vs_peer=ratio(med['stage1'], med['peer']),
               ideal1_ms=i1 * 1000, ideal2_ms=i2 * 1000)
    rows = [
        ['stage 1 (GuidanceDistiller.train_step)', med['stage1'] * 1000,
         i1 * 1000, res['stage1_vs_ideal']],
        ['stage 2 (ProgressiveDistiller.train_step)', med['stage2'] * 1000,
         i2 * 1000, res['stage2_vs_ideal']],
    ]
    body = markdown_table(['iteration', 'measured ms', 'ideal ms',
                           'measured / ideal'], rows)
    body += ('\n\nIdeal stage 1 = T_fb + T_f(2B), ideal stage 2 = T_fb + 2 '
             'T_f(B) with T_fb = student forward + backward + optimizer '
             'step (Adam, grad-norm clip 1, same OptimWrapper) on a '
             'precomputed target, T_f = frozen teacher forward under '
             f'no_grad. Batch B = {b}. Parts (ms): T_fb '
             f'{med["t_fb"] * 1000:.2f}, T_f(B) {med["t_f_b"] * 1000:.2f}, '
             f'T_f(2B) {med["t_f_2b"] * 1000:.2f}, T_f(B) w-conditioned '
             f'{med["t_f_b_w"] * 1000:.2f}; teacher training step '
             f'{med["teacher_train"] * 1000:.2f}. The measured steps '
             'include noise sampling, data preprocessing, the loss and the '
             'student EMA update (stage 1), which the ideal leaves out.')
    body += '\n\nPeer (plain PyTorch stage 1, same batch):\n\n' + \
        markdown_table(['loop', 'ms / iteration', 'ratio to peer'], [
            ['mmdistill stage 1 (with EMA)', med['stage1'] * 1000,
             res['stage1_vs_peer']],
            ['plain: teacher called twice, autograd on, no EMA',
             med['peer'] * 1000, 1.0]])
    log(body)
    return body, res


def child_cmd(args, extra):
    cmd = [sys.executable, osp.abspath(__file__), '--device', args.device]
    if args.quick:
        cmd.append('--quick')
    for flag, v in (('--teacher-ckpt', args.teacher_ckpt),
                    ('--student-ckpt', args.student_ckpt)):
        if v:
            cmd += [flag, v]
    return cmd + extra


def run_child(cmd, threads, env_extra=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env.update(env_extra or {})
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f'benchmark child failed ({" ".join(cmd)}):\n'
                           f'{p.stderr[-2000:]}')
    line = [ln for ln in p.stdout.splitlines() if ln.startswith('{')][-1]
    out = json.loads(line)
    out['process_wall_s'] = wall
    return out


def child_memory(args):
    """Peak RSS of a few training steps of one model (fresh process)."""
    from mmdistill.utils.benchmark import (current_rss_mib, peak_rss_mib,
                                           reset_peak_rss)
    torch.set_num_threads(args.threads)
    data = make_batch(args.train_batch, args.device)
    warm = make_batch(2, args.device, seed=1)
    what = args.what
    if what == 'peer':
        peer = build_peer(args)

        def step(d=data):
            peer.step(d['inputs'], d['data_samples'])
    else:
        m = dict(stage1=build_stage1, stage2=build_stage2,
                 teacher=build_teacher)[what](args).train()
        ow = optim_wrapper_for(m)

        def step(d=data):
            m.train_step(d, ow)
    step(warm)  # lazy initialisations and optimizer state, at batch 2
    reset = reset_peak_rss()
    base = current_rss_mib() if reset else peak_rss_mib()
    for _ in range(args.mem_iters):
        step()
    print(json.dumps(dict(what=what, base_mib=base,
                          peak_mib=peak_rss_mib(), peak_reset=reset)))


def bench_memory(args, log):
    from mmdistill.utils.benchmark import markdown_table, ratio
    res = {}
    for what in ('teacher', 'stage1', 'stage2', 'peer'):
        res[what] = run_child(child_cmd(args, [
            '--child', 'memory', '--what', what, '--train-batch',
            str(args.train_batch), '--threads', str(args.threads)]),
            args.threads)
    t = res['teacher']['peak_mib'] - res['teacher']['base_mib']
    rows = []
    names = dict(teacher='teacher training (CFGDiffusion)',
                 stage1='stage 1 (GuidanceDistiller)',
                 stage2='stage 2 (ProgressiveDistiller)',
                 peer='plain stage 1 peer')
    for what, r in res.items():
        inc = r['peak_mib'] - r['base_mib']
        rows.append([names[what], r['peak_mib'], inc, ratio(inc, t)])
    body = markdown_table(['training', 'peak RSS MiB',
                           'increase over built model MiB',
                           'increase / teacher training'], rows)
    body += (f'\n\nEach row is a fresh process, batch {args.train_batch}, '
             f'{args.mem_iters} training steps after building the model and '
             'one warm-up step at batch 2 (lazy initialisation, optimizer '
             'state). Peak = the peak resident set size (VmHWM, reset with '
             '/proc/self/clear_refs after the build so import-time peaks do '
             'not hide it); increase = peak minus the resident size before '
             'the first step (activations and autograd graph at batch B).')
    log(body)
    return body, res


def child_eval(args):
    """FID of 4-step student samples; under torchrun each rank does its
    share (gloo)."""
    world = int(os.environ.get('WORLD_SIZE', 1))
    torch.set_num_threads(args.threads)
    if world > 1:
        from mmdistill.engine import init_cpu_dist
        init_cpu_dist(timeout_s=600)
    import torch.distributed as dist
    from mmdistill.datasets import load_digits_split
    from mmdistill.evaluation import evaluate_generator
    from mmdistill.evaluation.extractors import build_extractor
    student = build_student_sampler(args)
    ext = build_extractor(dict(type='classifier', checkpoint=CLASSIFIER))
    real, _ = load_digits_split('train')
    real = torch.as_tensor(real)
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    res = evaluate_generator(student, ext, real, n=args.eval_n,
                             metrics=('FID', ),
                             sample_kwargs=dict(steps=4, guidance=2.0),
                             batch_size=500, progress=False)
    if world > 1:
        dist.barrier()
    dt = time.perf_counter() - t0
    if int(os.environ.get('RANK', 0)) == 0:
        print(json.dumps(dict(seconds=dt, fid=list(res.values())[0],
                              world=world, threads=args.threads)))
    if world > 1:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def bench_eval(args, log):
    from mmdistill.utils.benchmark import markdown_table, ratio
    base = ['--child', 'eval', '--eval-n', str(args.eval_n)]
    one1 = run_child(child_cmd(args, base + ['--threads', '1']), 1)
    one2 = run_child(child_cmd(args, base + ['--threads', '2']), 2)
    tr = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
          '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
          '--master_port', str(free_port())]
    two = run_child(tr + child_cmd(args, base + ['--threads', '1'])[1:], 1)
    best1 = min(one1['seconds'], one2['seconds'])
    res = dict(n=args.eval_n, one_proc_1thr_s=one1['seconds'],
               one_proc_2thr_s=one2['seconds'], two_proc_s=two['seconds'],
               speedup_vs_1thr=ratio(one1['seconds'], two['seconds']),
               speedup_vs_best=ratio(best1, two['seconds']),
               fid=[one1['fid'], one2['fid'], two['fid']])
    rows = [['1 process, 1 thread', one1['seconds'], 1.0,
             one1['process_wall_s'], one1['fid']],
            ['1 process, 2 threads', one2['seconds'],
             ratio(one1['seconds'], one2['seconds']),
             one2['process_wall_s'], one2['fid']],
            ['2 processes (gloo), 1 thread each', two['seconds'],
             res['speedup_vs_1thr'], two['process_wall_s'], two['fid']]]
    body = markdown_table(['setting', 'FID evaluation s', 'speed-up vs 1x1',
                           'whole process s', 'FID'], rows)
    body += (f'\n\nFID-{args.eval_n} of 4-step student samples (w = 2, '
             'classifier features, real = the 1437 training digits). '
             '2 processes vs the best single-process setting: '
             f'{res["speedup_vs_best"]:.2f}x (target >= 1.6x: '
             f'{"met" if res["speedup_vs_best"] >= 1.6 else "NOT met"}). '
             'The evaluation time excludes start-up (imports, model '
             'build, process-group set-up), which the whole-process column '
             'includes.')
    log(body)
    return body, res


# ------------------------------------------------------------------ main
def bench_mgd3(args, log):
    """MGD3 synthesis of digits IPC 10 (configs/mgd3/mgd3_digits_ipc10.py:
    mode discovery + 100 guided images) with the shipped teacher, into a
    temporary folder; target: under a minute on the 2-core CPU."""
    import tempfile

    from mmdistill.apis import load_config
    from mmdistill.synthesis.pipeline import Synthesizer
    cfg = load_config(osp.join(ROOT, 'configs/mgd3/mgd3_digits_ipc10.py'))
    if args.quick:
        cfg.synthesis.steps, cfg.synthesis.t_stop = 4, 2
    times = []
    for _ in range(1 if args.quick else 2):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            man = Synthesizer(cfg, out, progress=False,
                              log=lambda *a: None).run()
            times.append(time.perf_counter() - t0)
    best = min(times)
    log(f'IPC 10: {man["total"]} images, best of {len(times)}: {best:.2f} s')
    body = ('| run | images | seconds |\n|---|---|---|\n' + ''.join(
        f'| {i + 1} | {man["total"]} | {t:.2f} |\n'
        for i, t in enumerate(times)) +
        f'\nMode discovery (k-means) and synthesis with the shipped '
        f'teacher and `configs/mgd3/mgd3_digits_ipc10.py` '
        f'({cfg.synthesis.steps} '
        f'steps), model build included, in a fresh folder each run. Target: '
        f'under 60 s: {"met" if best < 60 else "NOT met"}.')
    return body, dict(seconds=times, images=man['total'])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=osp.join(ROOT, 'BENCHMARKS.md'),
                   help='markdown file the section is appended to')
    p.add_argument('--json', default=None, help='also write raw results')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes (seconds): checks the tool runs')
    p.add_argument('--sections', default=','.join(SECTIONS),
                   help=f'comma-separated subset of {SECTIONS}')
    p.add_argument('--device', default='cpu')
    p.add_argument('--bf16', action='store_true',
                   help='bf16 autocast (CUDA only)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads per process (default 1: more threads '
                   'than free cores oversubscribe OpenMP)')
    p.add_argument('--sample-batch', type=int, default=None)
    p.add_argument('--train-batch', type=int, default=None)
    p.add_argument('--teacher-steps', default=None)
    p.add_argument('--student-steps', default=None)
    p.add_argument('--repeats', type=int, default=None,
                   help='interleaved timing rounds of the train section')
    p.add_argument('--sample-repeats', type=int, default=None,
                   help='interleaved timing rounds of the sampling section')
    p.add_argument('--eval-n', type=int, default=None)
    p.add_argument('--mem-iters', type=int, default=3)
    p.add_argument('--teacher-ckpt', default=None,
                   help='digits teacher checkpoint (default: random)')
    p.add_argument('--student-ckpt', default=None,
                   help='w-conditioned student checkpoint (stage 1 or 2)')
    p.add_argument('--title', default='mmdistill benchmark')
    p.add_argument('--child', choices=('memory', 'eval'),
                   help=argparse.SUPPRESS)
    p.add_argument('--what', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    q = a.quick
    defaults = dict(threads=1,
                    sample_batch=64 if q else 100,
                    train_batch=16 if q else 128,
                    teacher_steps='16,4' if q else '256,64',
                    student_steps='1,2,4' if q else '1,2,4,8',
                    repeats=2 if q else 5, sample_repeats=1 if q else 2,
                    eval_n=200 if q else 10000)
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.teacher_steps = [int(s) for s in str(a.teacher_steps).split(',')]
    a.student_steps = [int(s) for s in str(a.student_steps).split(',')]
    a.sections = [s for s in a.sections.split(',') if s]
    bad = set(a.sections) - set(SECTIONS)
    if bad:
        p.error(f'unknown sections {sorted(bad)}; choose from {SECTIONS}')
    a.min_round_s = 0.01 if q else 0.1
    return a


def main(argv=None):
    args = parse_args(argv)
    from mmdistill import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    if args.child == 'memory':
        return child_memory(args)
    if args.child == 'eval':
        return child_eval(args)
    from mmdistill.utils.benchmark import (append_section, format_section,
                                           machine_description)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    machine = machine_description(args.threads, args.device)
    if args.bf16:
        machine['autocast'] = 'bf16'

    def log(text):
        print(text, flush=True)

    print('machine: ' + json.dumps(machine), flush=True)
    blocks, results = [], dict(machine=machine)
    titles = dict(sampling='Sampling speed-up (student vs CFG teacher)',
                  train='Distillation iteration vs the ideal, and the '
                  'plain peer',
                  memory='Peak memory of training',
                  eval='FID evaluation, 1 vs 2 processes',
                  mgd3='MGD3 synthesis, digits IPC 10')
    fns = dict(sampling=bench_sampling, train=bench_train,
               memory=bench_memory, eval=bench_eval, mgd3=bench_mgd3)
    for name in args.sections:
        print(f'\n== {titles[name]}', flush=True)
        body, res = fns[name](args, log)
        blocks.append((titles[name], body))
        results[name] = res
    weights = 'checkpoints: ' + ', '.join(
        p for p in (args.teacher_ckpt, args.student_ckpt) if p) if (
        args.teacher_ckpt or args.student_ckpt) else \
        'random weights of the digits architecture'
    if 'mgd3' in args.sections:
        weights += '; MGD3 section: checkpoints/digits_teacher.pth'
    title = args.title + (' (quick)' if args.quick else '')
    cmd = 'python tools/benchmark.py ' + ' '.join(
        osp.basename(a) if osp.isabs(a) else a
        for a in (argv if argv is not None else sys.argv[1:]))
    text = format_section(title, dict(machine, weights=weights), blocks,
                          command=cmd.strip())
    append_section(args.out, text)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    print(f'\nappended to {args.out}')
    return results


if __name__ == '__main__':
    main()
