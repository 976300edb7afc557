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
- ``mgd3``: MGD3 synthesis time of digits IPC 10 with the shipped teacher.
- ``lora``: LoRA vs full students of the real-format digits teacher
  (stage 1 and 2): trainable parameters, training state measured and
  predicted by the memory model, peak RSS, iteration time.

Weights are random (speed does not depend on them) unless checkpoints are
given. Results are printed and appended as a markdown section to
``--out`` (BENCHMARKS.md). Each section is one module of
``tools/benchmarks/``, which also holds the shared helpers.

    python tools/benchmark.py                 # full run, ~5 min on 2 cores
    python tools/benchmark.py --quick --out /tmp/B.md   # seconds
"""
import argparse
import json
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TOOLS = osp.join(ROOT, 'tools')
if TOOLS not in sys.path:  # imported rather than run as a script
    sys.path.append(TOOLS)

import torch  # noqa: E402
from benchmarks import (fid_eval, iteration, lora, memory, mgd3,  # noqa: E402
                        mgd3_dit, sampling)
from benchmarks.common import (append_section, format_section,  # noqa: E402
                               machine_description)

#: The sections in run order: their modules (``TITLE``, ``run``).
MODULES = dict(sampling=sampling, train=iteration, memory=memory,
               eval=fid_eval, mgd3=mgd3, lora=lora, mgd3_dit=mgd3_dit)
SECTIONS = tuple(MODULES)
#: The measurements that run in a child process (``--child``).
CHILDREN = dict(memory=memory.child, eval=fid_eval.child)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parses the command line and fills in the size defaults.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The options; ``teacher_steps`` / ``student_steps`` as lists of
        ints, ``sections`` as a list, and ``min_round_s``, the shortest
        timing round (0.01 s with ``--quick``, else 0.1 s).
    """
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=osp.join(ROOT, 'BENCHMARKS.md'),
                   help='markdown file the section is appended to')
    p.add_argument('--json', default=None, help='also write raw results')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes (seconds): checks the tool runs')
    p.add_argument('--sections', default=','.join(SECTIONS),
                   help=f'comma-separated subset of {SECTIONS}')
    p.add_argument('--device', default='cpu')
    p.add_argument('--teacher-family', choices=('compact', 'ddpm'),
                   default='compact',
                   help="train section: 'compact' (the CompactUNet digits "
                   "teacher) or 'ddpm' (the diffusers UNet2DModel folder "
                   'checkpoints/ddpm-unet2d-digits)')
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
    p.add_argument('--child', choices=tuple(CHILDREN),
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


def main(argv: Optional[List[str]] = None) -> Optional[Dict[str, Any]]:
    """Runs the chosen sections and appends their markdown section.

    With ``--child`` it is one child process's measurement instead (its
    result is printed as a JSON line).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The raw results by section, with ``machine``; None in a child.
    """
    args = parse_args(argv)
    from mmdistill import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    if args.child:
        return CHILDREN[args.child](args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    machine = machine_description(args.threads, args.device)
    if args.bf16:
        machine['autocast'] = 'bf16'

    def log(text):
        print(text, flush=True)

    print('machine: ' + json.dumps(machine), flush=True)
    blocks, results = [], dict(machine=machine)
    for name in args.sections:
        section = MODULES[name]
        print(f'\n== {section.TITLE}', flush=True)
        body, res = section.run(args, log)
        blocks.append((section.TITLE, body))
        results[name] = res
    weights = 'checkpoints: ' + ', '.join(
        p for p in (args.teacher_ckpt, args.student_ckpt) if p) if (
        args.teacher_ckpt or args.student_ckpt) else \
        'random weights of the digits architecture'
    if args.teacher_family == 'ddpm':
        weights = ('train section: the trained DDPM folder '
                   'checkpoints/ddpm-unet2d-digits')
    if 'lora' in args.sections:
        weights += ('; LoRA section: the trained DDPM folder '
                    'checkpoints/ddpm-unet2d-digits')
    if 'mgd3' in args.sections:
        weights += '; MGD3 section: checkpoints/digits_teacher.pth'
    if 'mgd3_dit' in args.sections:
        weights += ('; MGD3 DiT section: checkpoints/dit-digits and its '
                    'students (configs/mgd3/'
                    'mgd3_dit_digits_ipc10_student*.py)')
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
