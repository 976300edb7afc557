"""Section ``lora``: LoRA students next to full fine-tuning.

On the real-format digits teacher (the diffusers UNet2DModel folder, as
``--teacher-family ddpm``), stage 1 and stage 2 each with a full student
and with the LoRA student of the digits LoRA configs
(``student_lora`` of
configs/guided_distill/guided_distill_ddpm_digits_v_lora.py):

- trainable parameters;
- the training state (weights, gradients, Adam moments, EMA) counted from
  the live tensors after a backward pass and an optimizer step (gradients
  still alive), next to the memory model's
  prediction (:func:`mmdistill.utils.memory.predicted_state_bytes`);
- the peak-RSS increase of a few steps in a fresh process (the memory
  section's child);
- ``train_step`` time, interleaved medians, as a ratio to the full
  student's.
"""
import argparse
import copy
from typing import Any, Dict, Tuple

from .common import Log, interleaved, markdown_table, ratio, timed
from .models import (build_stage1, build_stage2, lora_settings, make_batch,
                     optim_wrapper_for)
from .processes import child_cmd, run_child

TITLE = 'LoRA students vs full fine-tuning (real-format digits teacher)'

MIB = 2.0 ** 20


def run(args: argparse.Namespace, log: Log) -> Tuple[str, Dict[str, Any]]:
    """Measures the section.

    Args:
        args: the parsed command line (``train_batch``, ``repeats``,
            ``threads``, ``mem_iters``).
        log: prints progress.

    Returns:
        The markdown body and the raw results by model.
    """
    from mmdistill.utils.memory import (measured_state_bytes,
                                        predicted_state_bytes)
    a = copy.copy(args)
    a.teacher_family = 'ddpm'
    lora = lora_settings()
    data = make_batch(args.train_batch, args.device)
    models = dict(stage1=build_stage1(a), stage1_lora=build_stage1(a, lora),
                  stage2=build_stage2(a), stage2_lora=build_stage2(a, lora))
    wrappers = {k: optim_wrapper_for(m.train()) for k, m in models.items()}
    fns = {k: timed(lambda m=m, ow=wrappers[k]: m.train_step(data, ow),
                    args.device) for k, m in models.items()}
    med, _ = interleaved(fns, args.repeats, 2, min_round_s=args.min_round_s)
    res = {}
    for k, m in models.items():
        n_t = sum(p.numel() for p in m.teacher.parameters())
        n_s = sum(p.numel() for p in m.parameters() if p.requires_grad)
        # the state at its peak: gradients alive, moments built
        m.loss(data['inputs'], data['data_samples'])['loss'].backward()
        wrappers[k].optimizer.step()
        got = measured_state_bytes(m, wrappers[k].optimizer)
        want = predicted_state_bytes(n_t, n_s, ema=m.net_ema is not None)
        mem = run_child(child_cmd(a, [
            '--child', 'memory', '--what', k, '--teacher-family', 'ddpm',
            '--train-batch', str(args.train_batch), '--threads',
            str(args.threads), '--mem-iters', str(args.mem_iters)]),
            args.threads)
        res[k] = dict(trainable=n_s, teacher_params=n_t,
                      state_bytes=got['total'],
                      predicted_bytes=want['total'],
                      rss_increase_mib=mem['peak_mib'] - mem['base_mib'],
                      ms=med[k] * 1000)
    rows = []
    for k, r in res.items():
        full = res[k.replace('_lora', '')]
        rows.append([
            ('stage 1' if k.startswith('stage1') else 'stage 2') +
            (', LoRA' if k.endswith('lora') else ', full'),
            r['trainable'], r['state_bytes'] / MIB,
            r['predicted_bytes'] / MIB, r['rss_increase_mib'], r['ms'],
            ratio(r['ms'], full['ms'])])
    body = markdown_table(
        ['student', 'trainable params', 'state MiB (measured)',
         'state MiB (memory model)', 'peak RSS increase MiB',
         'ms / iteration', 'time vs full'], rows)
    body += (f'\n\nLoRA: rank {lora["rank"]}, alpha {lora["alpha"]:g} on '
             f'{", ".join(lora["target_modules"])}. State = weights of '
             'teacher and student, EMA, gradients and Adam moments, each '
             'storage counted once (a LoRA student holds the teacher\'s '
             'tensors as its base), counted from the live tensors after a '
             'backward pass and an optimizer step (gradients alive); '
             f'batch {args.train_batch}. Peak RSS increase: '
             f'a fresh process, {args.mem_iters} steps after one warm-up '
             'step (activations and autograd graph).')
    log(body)
    return body, res
