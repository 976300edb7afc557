"""Choosing synthesis hyper-parameters on a validation split, and running
the ablation rows with the chosen settings.

Selection (``select``) never reads the test split: the config's real
training set is split once, deterministically and stratified
(:class:`StratifiedHoldout`), into a 'fit' part, which replaces the real
data for everything the run does (mode discovery, real baselines,
representativeness), and a 'val' part, which replaces ``evaluation.
test_data``. For every row (variant of the ablation) each setting of its
grid is synthesised and scored by the final-epoch validation accuracy of
the evaluation classifier (mean over the evaluation seeds); the best one
wins, ties going to the earlier setting in grid order.

A row is ``dict(fixed=dict(...), grid=dict(key=[values, ...]))`` over keys of
the ``synthesis`` section (or ``'mode_discovery.<key>'`` for the mode
discovery settings); the grid is the product of its lists, in the
order written (the last key varies fastest).
"""
import copy
import itertools
import json
import multiprocessing
import os

import numpy as np
import torch

from mmdistill.utils import UserError, atomic_write
from .evaluate import evaluate_dataset
from .pipeline import (MANIFEST, Synthesizer, fingerprint, synthesis_settings,
                       to_plain)

DEFAULT_SELECTION = dict(
    holdout=dict(fraction=0.2, seed=0),
    metric='ConvNet',
    rows=dict(
        a=dict(fixed=dict(source='real_random')),
        b=dict(fixed=dict(lam=0.0, init='noise'),
               grid=dict(guidance=[0.0, 1.0, 2.0])),
        c=dict(fixed=dict(lam=0.0, init='nearest_real'),
               grid=dict(guidance=[0.0, 1.0, 2.0])),
        d=dict(fixed=dict(t_stop=0, init='noise'),
               grid=dict(lam=[0.1, 0.3, 1.0, 3.0],
                         guidance=[0.0, 1.0, 2.0])),
        e=dict(fixed=dict(init='noise'),
               grid=dict(lam=[0.1, 0.3, 1.0, 3.0], t_stop=[12, 25, 37],
                         guidance=[0.0, 1.0, 2.0])),
        f=dict(fixed=dict(source='real_full'))))

# the paper's default MGD3 setting, kept as a reference line
REFERENCE = dict(lam=0.1, t_stop=25, guidance=2.0, init='noise')
RESULT = 'eval.json'


def selection_settings(cfg):
    """The config's ``selection`` section over DEFAULT_SELECTION (its
    ``holdout`` keys and ``rows`` entries replace the default ones)."""
    sel = copy.deepcopy(DEFAULT_SELECTION)
    given = to_plain(cfg.get('selection', {}) or {})
    for key, val in given.items():
        if key in ('holdout', 'rows'):  # a config row replaces that row only
            sel[key].update(val)
        else:
            sel[key] = val
    return sel


def grid_settings(row):
    """The settings of a row's grid, each ``fixed`` merged with one grid
    point, in grid order."""
    fixed = dict(row.get('fixed', {}))
    grid = row.get('grid', {}) or {}
    for key, vals in grid.items():
        if not isinstance(vals, (list, tuple)) or not vals:
            raise UserError(f'selection grid entry {key!r} must be a '
                            f'non-empty list, got {vals!r}')
    keys = list(grid)
    return [{**fixed, **dict(zip(keys, vals))}
            for vals in itertools.product(*(grid[k] for k in keys))]


def _mentions_test_split(obj):
    if isinstance(obj, dict):
        if obj.get('split') == 'test':
            return True
        return any(_mentions_test_split(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_mentions_test_split(v) for v in obj)
    return False


def holdout_config(cfg, fraction=0.2, seed=0):
    """A copy of ``cfg`` whose real data is the 'fit' part of its real
    training set and whose evaluation set is the held-out 'val' part."""
    real = to_plain(cfg.get('real_data'))
    if not real:
        raise UserError('the config has no real_data to hold a validation '
                        'part out of')
    if _mentions_test_split(real):
        raise UserError("real_data uses split='test'; selection must hold "
                        'its validation part out of the training split')
    part = dict(type='StratifiedHoldout', dataset=real, fraction=fraction,
                seed=seed)
    out = copy.deepcopy(to_plain(cfg))
    out['real_data'] = {**part, 'part': 'fit'}
    out['evaluation'] = {**out.get('evaluation', {}),
                         'test_data': {**part, 'part': 'val'}}
    return out


def with_synthesis(cfg, settings):
    """A copy of the (plain dict) config with ``synthesis`` updated; a key
    ``'<section>.<key>'`` (e.g. ``'mode_discovery.target'``) sets that key
    of another section instead."""
    out = copy.deepcopy(cfg)
    syn = {}
    for key, val in settings.items():
        section, dot, sub = key.partition('.')
        if dot:
            out[section] = {**(out.get(section) or {}), sub: val}
        else:
            syn[key] = val
    out['synthesis'] = {**out.get('synthesis', {}), **syn}
    return out


def _name(row, settings):
    def short(k, v):
        if isinstance(v, dict):
            v = v.get('type', 'cfg')
        return f'{k.rpartition(".")[2]}{v}'
    parts = [row] + [short(k, v) for k, v in sorted(settings.items())
                     if k not in ('source', 'init')]
    return '_'.join(parts).replace('.', 'p')


def run_setting(cfg, folder, log=print):
    """Synthesise (or reuse) ``folder`` for the plain config ``cfg`` and
    evaluate it; the evaluation is cached in ``folder/eval.json`` keyed by
    the synthesis fingerprint and the evaluation settings. A folder that
    holds a run with other settings is replaced."""
    fp = fingerprint(synthesis_settings(cfg))
    man = os.path.join(folder, MANIFEST)
    stale = False
    if os.path.isfile(man):
        try:
            with open(man) as f:
                stale = json.load(f).get('fingerprint') != fp
        except (OSError, ValueError):
            stale = True
    syn = Synthesizer(cfg, folder, overwrite=stale, progress=False, log=log)
    key = fingerprint(dict(data=syn.fp, evaluation=cfg['evaluation']))
    path = os.path.join(folder, RESULT)
    if os.path.isfile(path) and os.path.isfile(
            os.path.join(folder, 'annotations.txt')):
        with open(path) as f:
            old = json.load(f)
        if old.get('key') == key:
            return old
    syn.run()
    res = evaluate_dataset(folder, cfg['evaluation'], cfg['real_data'],
                           log=lambda *a: None)
    res['key'] = key
    atomic_write(path, lambda f: f.write(json.dumps(res, indent=1).encode()))
    return res


def pick_best(candidates, tol=1e-3):
    """Index of the highest ``val_acc``; ties go to the earliest.

    Accuracies within ``tol`` (in %) of the best count as ties: they are
    float32 means over seeds, so equal numbers of correct images can differ
    in the last bits (~1e-5 %), while one image of a few hundred is
    ~0.1-0.3 %.
    """
    best = max(c['val_acc'] for c in candidates)
    return next(i for i, c in enumerate(candidates)
                if c['val_acc'] >= best - tol)


def _one_thread():
    torch.set_num_threads(1)


def _run_candidate(task):
    cfg, folder = task
    return run_setting(cfg, folder, log=lambda *a: None)


def run_candidates(tasks, jobs=1, log=print):
    """``run_setting`` for each ``(plain config, folder)`` task, in order.

    With ``jobs`` > 1 the candidates run in that many worker processes of
    one thread each (every candidate has its own seeds and folder, so the
    results do not depend on ``jobs``)."""
    if jobs <= 1:
        yield from (run_setting(c, f, log) for c, f in tasks)
        return
    ctx = multiprocessing.get_context('spawn')
    with ctx.Pool(int(jobs), initializer=_one_thread) as pool:
        yield from pool.imap(_run_candidate, tasks, chunksize=1)


def select(cfg, out_dir, rows=None, log=print, jobs=1):
    """Run the selection; returns (and writes ``out_dir/selection.json``)
    ``dict(holdout, metric, rows={row: dict(candidates=[...], best=...)})``.

    Args:
        cfg: a synthesis config (``real_data``, ``evaluation``, optional
            ``selection``).
        out_dir (str): folder for the candidate data sets and the result.
        rows (list[str] | None): rows to run (default: all of the config).
        jobs (int): candidates evaluated in parallel (worker processes of
            one thread each; 1: in this process).
    """
    sel = selection_settings(cfg)
    hcfg = holdout_config(cfg, **sel['holdout'])
    if _mentions_test_split(hcfg):
        raise UserError("the selection config still names split='test' "
                        '(check evaluation and real_data)')
    spec = sel['rows']
    rows = list(spec) if rows is None else list(rows)
    for r in rows:
        if r not in spec:
            raise UserError(f'unknown selection row {r!r}; the config has '
                            f'{sorted(spec)}')
    if not isinstance(jobs, int) or jobs < 1:
        raise UserError(f'jobs must be a positive integer, got {jobs!r}')
    metric = sel['metric']
    out = dict(holdout=sel['holdout'], metric=metric, rows={})
    points = [(r, settings) for r in rows for settings in
              grid_settings(spec[r])]
    tasks = [(with_synthesis(hcfg, settings),
              os.path.join(out_dir, _name(r, settings)))
             for r, settings in points]
    results = run_candidates(tasks, jobs, log)
    for r in rows:
        cands = []
        for settings in grid_settings(spec[r]):
            folder = os.path.join(out_dir, _name(r, settings))
            res = next(results)
            if metric not in res:
                raise UserError(f'selection metric {metric!r} is not an '
                                'evaluation classifier of the config')
            cands.append(dict(settings=settings, folder=folder,
                              val_acc=res[metric]['mean'],
                              val_std=res[metric]['std'],
                              diversity=res['diversity'],
                              representativeness=res['representativeness']))
            log(f'[{r}] {settings}: val {res[metric]["mean"]:.2f} +- '
                f'{res[metric]["std"]:.2f}')
        best = pick_best(cands)
        out['rows'][r] = dict(candidates=cands, best=cands[best])
        log(f'[{r}] selected {cands[best]["settings"]} (val '
            f'{cands[best]["val_acc"]:.2f})')
    os.makedirs(out_dir, exist_ok=True)
    atomic_write(os.path.join(out_dir, 'selection.json'),
                 lambda f: f.write(json.dumps(out, indent=1).encode()))
    return out


def pool_seeds(per_seed):
    """Pool the evaluations of one row synthesised with several synthesis
    seeds (``{seed: evaluate_dataset result}``).

    Every classifier entry gets all accuracies (synthesis seed x classifier
    seed), their mean and population std, and ``seed_means`` (the mean over
    classifier seeds for each synthesis seed, in seed order); scalar
    metrics (diversity, representativeness, ...) are averaged over the
    synthesis seeds.
    """
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    out = dict(seeds=seeds)
    for key, val in first.items():
        if isinstance(val, dict) and 'accs' in val:
            accs = [a for s in seeds for a in per_seed[s][key]['accs']]
            out[key] = dict(accs=accs, mean=float(np.mean(accs)),
                            std=float(np.std(accs)),
                            seed_means=[per_seed[s][key]['mean']
                                        for s in seeds])
        elif isinstance(val, (int, float)) and not isinstance(val, bool):
            out[key] = float(np.mean([per_seed[s][key] for s in seeds]))
    return out


def paired_gap(row, baseline, metric):
    """Accuracy gain of ``row`` over ``baseline`` paired by synthesis seed:

        d_s = acc(row, s) - acc(baseline, s),  s = synthesis seed

    (each acc the mean over the classifier seeds). Returns ``dict(diffs,
    mean, std, wins)`` with the population std of d_s and the number of
    seeds where d_s > 0.
    """
    a, b = row[metric], baseline[metric]
    if row.get('seeds') != baseline.get('seeds'):
        raise UserError('paired gap: the rows were run with different '
                        'synthesis seeds')
    diffs = [x - y for x, y in zip(a['seed_means'], b['seed_means'])]
    return dict(diffs=diffs, mean=float(np.mean(diffs)),
                std=float(np.std(diffs)), wins=int(sum(d > 0 for d in diffs)))


def run_rows(cfg, row_settings, out_dir, log=print, seeds=None):
    """Synthesise and evaluate each row on the config's own real data and
    test split; ``row_settings`` maps row name -> synthesis settings.

    With ``seeds`` (synthesis seeds, the config's top-level ``seed``:
    images, modes' k-means and the real random subset) every row is run
    once per seed in ``out_dir/<row>_seed<s>`` and the results are pooled
    (:func:`pool_seeds`); the classifier seeds stay those of
    ``evaluation.seeds``. Returns {row: evaluation result}."""
    plain = to_plain(cfg)
    if seeds is not None:
        seeds = [int(s) for s in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise UserError(f'synthesis seeds must be distinct and at least '
                            f'one, got {seeds}')
    results = {}
    for r, settings in row_settings.items():
        row_cfg = with_synthesis(plain, settings)
        if seeds is None:
            results[r] = run_setting(row_cfg, os.path.join(out_dir, r), log)
        else:
            per = {}
            for s in seeds:
                per[s] = run_setting({**row_cfg, 'seed': s}, os.path.join(
                    out_dir, f'{r}_seed{s}'), log)
            results[r] = pool_seeds(per)
        results[r]['settings'] = settings
    return results
