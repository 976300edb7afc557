"""Helpers of ``tools/benchmark.py``: timing, the ideal-iteration model,
speed-up ratios, peak memory and the markdown section of BENCHMARKS.md.

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
"""
import datetime
import os
import platform
import statistics
import time

import torch


def median_time(fn, repeats=5, warmup=1, number=1):
    """Median wall-clock seconds of one call of ``fn``.

    ``fn`` runs ``warmup`` times untimed, then ``repeats`` timed rounds of
    ``number`` calls each; each round's time is divided by ``number``.

    Returns:
        tuple[float, list[float]]: the median and the per-round times.
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


def ratio(numerator, denominator):
    """numerator / denominator (inf when the denominator is 0)."""
    return float('inf') if denominator == 0 else numerator / denominator


def ideal_stage1(t_fb, t_f_2b):
    """Ideal stage-1 iteration: T_fb + T_f(2B)."""
    return t_fb + t_f_2b


def ideal_stage2(t_fb, t_f_b):
    """Ideal stage-2 iteration: T_fb + 2 T_f(B)."""
    return t_fb + 2 * t_f_b


def nfe(steps, cfg):
    """Network evaluations per image: 2N for a CFG sampler (cond + uncond),
    N for a w-conditioned student."""
    return 2 * steps if cfg else steps


def nfe_ratio(teacher_steps, student_steps):
    """NFE(teacher, CFG) / NFE(student) = 2 N_teacher / N_student."""
    return ratio(nfe(teacher_steps, True), nfe(student_steps, False))


def speedup_target(teacher_steps, student_steps, efficiency=0.9):
    """Acceptance threshold on the wall-clock speed-up:
    ``efficiency`` x the NFE ratio (0.9 x 512 / 4 = 115.2)."""
    return efficiency * nfe_ratio(teacher_steps, student_steps)


def cpu_model():
    """The CPU model name from /proc/cpuinfo (else ``platform``)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(threads=None, device='cpu'):
    """Machine facts recorded with every benchmark section."""
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


def _proc_status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def current_rss_mib():
    """Current resident set size in MiB (Linux /proc; else the peak)."""
    try:
        return _proc_status_kib('VmRSS') / 1024.0
    except (OSError, KeyError):
        return peak_rss_mib()


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0:
    write 5 to /proc/self/clear_refs), so :func:`peak_rss_mib` reports the
    peak from now on. Returns True on success."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        _proc_status_kib('VmHWM')
        return True
    except (OSError, KeyError):
        return False


def peak_rss_mib():
    """Peak resident set size of this process in MiB: VmHWM from
    /proc/self/status (which :func:`reset_peak_rss` can reset), else
    ``ru_maxrss`` (KiB on Linux)."""
    try:
        return _proc_status_kib('VmHWM') / 1024.0
    except (OSError, KeyError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def markdown_table(header, rows):
    """A GitHub markdown table; floats are printed with 4 significant
    digits."""

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


def format_section(title, machine, blocks, command=None):
    """The markdown section appended to BENCHMARKS.md.

    Args:
        title (str): section title (``## <title> (<date>)``).
        machine (dict): :func:`machine_description`.
        blocks (list[tuple[str, str]]): (sub-title, markdown body) pairs.
        command (str, optional): the command that produced it.
    """
    out = [f'## {title} ({machine["date"]})', '']
    out.append('Machine: ' + ', '.join(
        f'{k} {v}' for k, v in machine.items() if k != 'date') + '.')
    if command:
        out += ['', f'Command: `{command}`']
    for sub, body in blocks:
        out += ['', f'### {sub}', '', body.rstrip()]
    return '\n'.join(out) + '\n'


def append_section(path, text):
    """Append ``text`` to the markdown file ``path`` (created with a title
    when missing), separated by a blank line."""
    new = not os.path.isfile(path) or os.path.getsize(path) == 0
    with open(path, 'a') as f:
        if new:
            f.write('# Benchmarks\n\n')
        else:
            f.write('\n')
        f.write(text)
