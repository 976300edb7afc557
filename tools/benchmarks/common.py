"""Shared helpers of the benchmark sections: timing, the ideal-iteration
model, speed-up ratios, peak memory and the markdown section appended to
BENCHMARKS.md.

Definitions (all times are medians over repeats after warm-up):

- T_fb: one student forward + backward + optimizer step (Adam, gradient
  clipping) at batch B, the part of an iteration no distiller can avoid.
- T_f(n): one frozen-teacher forward (no autograd) at batch n.
- Ideal stage-1 iteration  = T_fb + T_f(2B)   (cond + uncond in one pass).
- Ideal stage-2 iteration  = T_fb + 2 T_f(B)  (two teacher DDIM steps).
- Overhead ratio = measured / ideal (1.0 is the physical floor on this
  device; sampling noise, data preparation, EMA and loss math add to it).
- Sampling: NFE of a CFG teacher with N DDIM steps is 2N (cond + uncond),
  of a distilled student with M steps M; NFE ratio = 2N / M and the
  wall-clock speed-up = images/s(student) / images/s(teacher).

Timing of several functions is interleaved (:func:`interleaved`): one
round runs every function once, so a load change on a shared machine hits
all of them alike.
"""
import argparse
import datetime
import math
import os
import os.path as osp
import platform
import statistics
import time
from typing import (Any, Callable, Dict, Hashable, List, Optional, Sequence,
                    Tuple)

import torch

#: The repository root (configs, checkpoints and BENCHMARKS.md live here).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Signature of the ``log`` callback every section receives.
Log = Callable[[str], None]


# ------------------------------------------------------------- formulas
def ratio(numerator: float, denominator: float) -> float:
    """Divides, with a zero denominator giving infinity.

    Args:
        numerator: the dividend.
        denominator: the divisor.

    Returns:
        ``numerator / denominator``, or ``inf`` when the denominator is 0.
    """
    return float('inf') if denominator == 0 else numerator / denominator


def ideal_stage1(t_fb: float, t_f_2b: float) -> float:
    """Ideal stage-1 iteration: T_fb + T_f(2B).

    Args:
        t_fb: student forward + backward + optimizer step at batch B.
        t_f_2b: frozen-teacher forward at batch 2B (cond + uncond).

    Returns:
        The ideal iteration time, in the unit of the inputs.
    """
    return t_fb + t_f_2b


def ideal_stage2(t_fb: float, t_f_b: float) -> float:
    """Ideal stage-2 iteration: T_fb + 2 T_f(B).

    Args:
        t_fb: student forward + backward + optimizer step at batch B.
        t_f_b: frozen w-conditioned teacher forward at batch B (two DDIM
            steps per iteration).

    Returns:
        The ideal iteration time, in the unit of the inputs.
    """
    return t_fb + 2 * t_f_b


def nfe(steps: int, cfg: bool) -> int:
    """Network evaluations per image.

    Args:
        steps: sampler steps N.
        cfg: whether the sampler is classifier-free guided (cond + uncond
            per step).

    Returns:
        2N for a CFG sampler, N for a w-conditioned student.
    """
    return 2 * steps if cfg else steps


def nfe_ratio(teacher_steps: int, student_steps: int) -> float:
    """NFE(teacher, CFG) / NFE(student) = 2 N_teacher / N_student.

    Args:
        teacher_steps: DDIM steps of the CFG teacher.
        student_steps: steps of the distilled student.

    Returns:
        The ratio of network evaluations per image.
    """
    return ratio(nfe(teacher_steps, True), nfe(student_steps, False))


def speedup_target(teacher_steps: int, student_steps: int,
                   efficiency: float = 0.9) -> float:
    """Acceptance threshold on the wall-clock speed-up.

    Args:
        teacher_steps: DDIM steps of the CFG teacher.
        student_steps: steps of the distilled student.
        efficiency: fraction of the NFE ratio required.

    Returns:
        ``efficiency`` x the NFE ratio (0.9 x 512 / 4 = 115.2).
    """
    return efficiency * nfe_ratio(teacher_steps, student_steps)


def verdict(ok: bool) -> str:
    """The word written after a target.

    Args:
        ok: whether the target is met.

    Returns:
        ``'met'`` or ``'NOT met'``.
    """
    return 'met' if ok else 'NOT met'


# --------------------------------------------------------------- timing
def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1,
                number: int = 1) -> Tuple[float, List[float]]:
    """Median wall-clock seconds of one call of ``fn``.

    ``fn`` runs ``warmup`` times untimed, then ``repeats`` timed rounds of
    ``number`` calls each; each round's time is divided by ``number``.

    Args:
        fn: the function to time (no arguments).
        repeats: timed rounds (>= 1).
        warmup: untimed calls first (>= 0).
        number: calls per round (>= 1).

    Returns:
        The median and the per-round times.

    Raises:
        ValueError: on a count out of range.
    """
    if repeats < 1 or number < 1 or warmup < 0:
        raise ValueError('need repeats >= 1, number >= 1, warmup >= 0')
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times), times


def sync(device: str) -> None:
    """Waits for the device's queued work (CUDA only).

    Args:
        device: the torch device name.
    """
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> Callable[[], None]:
    """Wraps ``fn`` so that a call returns only once the device is done.

    Args:
        fn: the function to time (no arguments).
        device: the torch device it runs on.

    Returns:
        A function calling ``fn`` and then :func:`sync`.
    """
    def run():
        fn()
        sync(device)
    return run


def interleaved(fns: Dict[Hashable, Callable[[], Any]], repeats: int,
                warmup: int, min_round_s: float = 0.05
                ) -> Tuple[Dict[Hashable, float], Dict[Hashable, int]]:
    """Median seconds per call of each function, in interleaved rounds.

    One round runs every function of ``fns``, ``repeats`` rounds in all,
    so that a load change on a shared machine hits all of them alike. Each
    round of a function runs it ``number`` times, chosen from the last
    warm-up call so a round lasts at least ``min_round_s``.

    Args:
        fns: the functions to time, by key.
        repeats: interleaved rounds.
        warmup: untimed calls of each function first (at least one is
            made: it sizes the rounds).
        min_round_s: the shortest round, in seconds.

    Returns:
        The median seconds per call and the calls per round, by key.
    """
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
    return {k: statistics.median(v) for k, v in times.items()}, numbers


class autocast:
    """bf16 autocast on CUDA with ``--bf16``; a no-op otherwise.

    Args:
        args: the parsed command line (``bf16``, ``device``).
    """

    def __init__(self, args: argparse.Namespace):
        self.ctx = torch.autocast('cuda', dtype=torch.bfloat16) if (
            args.bf16 and str(args.device).startswith('cuda')) else None

    def __enter__(self):
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            return self.ctx.__exit__(*exc)


# -------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU model name.

    Returns:
        The model name from /proc/cpuinfo, else what ``platform`` says.
    """
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(threads: Optional[int] = None,
                        device: str = 'cpu') -> Dict[str, Any]:
    """Machine facts recorded with every benchmark section.

    Args:
        threads: torch threads per process (default: torch's current).
        device: the torch device measured.

    Returns:
        date, cpu, cores, torch, python, threads, device, and where known
        load_average and gpu.
    """
    desc = dict(date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
                cpu=cpu_model(), cores=os.cpu_count(),
                torch=torch.__version__, python=platform.python_version(),
                threads=threads if threads is not None else
                torch.get_num_threads(), device=device)
    try:
        desc['load_average'] = ' / '.join(f'{x:.2f}'
                                          for x in os.getloadavg())
    except OSError:
        pass
    if device.startswith('cuda') and torch.cuda.is_available():
        desc['gpu'] = torch.cuda.get_device_name()
    return desc


# --------------------------------------------------------------- memory
def _proc_status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def current_rss_mib() -> float:
    """Current resident set size of this process.

    Returns:
        VmRSS in MiB (Linux /proc); else the peak.
    """
    try:
        return _proc_status_kib('VmRSS') / 1024.0
    except (OSError, KeyError):
        return peak_rss_mib()


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process.

    Writes 5 to /proc/self/clear_refs (Linux >= 4.0), so
    :func:`peak_rss_mib` reports the peak from now on.

    Returns:
        True on success.
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        _proc_status_kib('VmHWM')
        return True
    except (OSError, KeyError):
        return False


def peak_rss_mib() -> float:
    """Peak resident set size of this process.

    Returns:
        VmHWM from /proc/self/status in MiB (which :func:`reset_peak_rss`
        can reset), else ``ru_maxrss`` (KiB on Linux) in MiB.
    """
    try:
        return _proc_status_kib('VmHWM') / 1024.0
    except (OSError, KeyError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------- markdown
def markdown_table(header: Sequence[str],
                   rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table.

    Args:
        header: the column titles.
        rows: the cells, one list per row; floats are printed with 4
            significant digits, anything else with ``str``.

    Returns:
        The table, without a trailing newline.

    Raises:
        ValueError: when a row's length differs from the header's.
    """

    def cell(v):
        if isinstance(v, float):
            return f'{v:.4g}'
        return str(v)

    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f'row of {len(row)} cells under a header of '
                             f'{len(header)}')
        lines.append('| ' + ' | '.join(cell(v) for v in row) + ' |')
    return '\n'.join(lines)


def format_section(title: str, machine: Dict[str, Any],
                   blocks: Sequence[Tuple[str, str]],
                   command: Optional[str] = None) -> str:
    """The markdown section appended to BENCHMARKS.md.

    Args:
        title: section title (``## <title> (<date>)``).
        machine: :func:`machine_description` (its ``date`` goes into the
            title, the rest into the Machine line).
        blocks: (sub-title, markdown body) pairs.
        command: the command that produced it.

    Returns:
        The section, ending with a newline.
    """
    out = [f'## {title} ({machine["date"]})', '']
    out.append('Machine: ' + ', '.join(
        f'{k} {v}' for k, v in machine.items() if k != 'date') + '.')
    if command:
        out += ['', f'Command: `{command}`']
    for sub, body in blocks:
        out += ['', f'### {sub}', '', body.rstrip()]
    return '\n'.join(out) + '\n'


def append_section(path: str, text: str) -> None:
    """Appends ``text`` to a markdown file.

    The file is created with a ``# Benchmarks`` title when missing or
    empty; otherwise a blank line separates the new section.

    Args:
        path: the markdown file.
        text: the section (:func:`format_section`).
    """
    new = not os.path.isfile(path) or os.path.getsize(path) == 0
    with open(path, 'a') as f:
        if new:
            f.write('# Benchmarks\n\n')
        else:
            f.write('\n')
        f.write(text)
