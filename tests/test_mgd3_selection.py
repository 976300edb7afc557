"""MGD3 hyper-parameter selection on a validation split held out of the
training set: the split, and that selection never reads the test split."""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmdistill.datasets.digits as digits_mod
from mmdistill.datasets import load_digits_split
from mmdistill.registry import DATASETS
from mmdistill.synthesis import evaluate as ev
from mmdistill.synthesis import selection as sl
from mmdistill.synthesis.holdout import StratifiedHoldout, stratified_holdout
from mmdistill.utils import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER_CFG = os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py')


def test_holdout_is_stratified_deterministic_and_disjoint():
    _, y = load_digits_split('train')
    fit, val = stratified_holdout(y, 0.2, seed=0)
    # disjoint and together exactly the training set
    assert len(np.intersect1d(fit, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([fit, val])),
                          np.arange(len(y)))
    # stratified: round(20 %) of every class held out
    per_class = np.bincount(y, minlength=10)
    assert np.array_equal(np.bincount(y[val], minlength=10),
                          np.round(0.2 * per_class).astype(int))
    # deterministic; another seed gives another draw
    fit2, val2 = stratified_holdout(y, 0.2, seed=0)
    assert np.array_equal(val, val2) and np.array_equal(fit, fit2)
    assert not np.array_equal(val, stratified_holdout(y, 0.2, seed=1)[1])


def test_holdout_dataset_parts_hold_the_right_images():
    base = DATASETS.build(dict(type='DigitsDataset', split='train'))
    cfg = dict(type='StratifiedHoldout', fraction=0.2, seed=0,
               dataset=dict(type='DigitsDataset', split='train'))
    fit = DATASETS.build({**cfg, 'part': 'fit'})
    val = DATASETS.build({**cfg, 'part': 'val'})
    assert len(fit) + len(val) == len(base) == 1437
    assert len(val) == int(np.round(0.2 * np.bincount(
        base.labels.numpy())).sum())
    i = int(val.indices[7])
    assert torch.equal(val[7]['inputs'], base.images[i])
    assert val[7]['data_samples'] == int(base.labels[i])
    assert torch.equal(val.images, base.images[torch.as_tensor(val.indices)])
    assert val.metainfo['classes'] == base.metainfo['classes']


@pytest.mark.parametrize('kwargs,match', [
    (dict(fraction=0.0), 'fraction must be in'),
    (dict(fraction=1.5), 'fraction must be in'),
    (dict(part='test'), 'part must be one of'),
])
def test_holdout_bad_arguments(kwargs, match):
    args = dict(dataset=dict(type='DigitsDataset', split='train'))
    with pytest.raises(UserError, match=match):
        StratifiedHoldout(**{**args, **kwargs})


def test_grid_order_and_bad_grid():
    row = dict(fixed=dict(init='noise'),
               grid=dict(lam=[0.1, 1.0], guidance=[0.0, 2.0]))
    assert sl.grid_settings(row) == [
        dict(init='noise', lam=0.1, guidance=0.0),
        dict(init='noise', lam=0.1, guidance=2.0),
        dict(init='noise', lam=1.0, guidance=0.0),
        dict(init='noise', lam=1.0, guidance=2.0)]
    assert sl.grid_settings(dict(fixed=dict(source='real_full'))) == [
        dict(source='real_full')]
    with pytest.raises(UserError, match='non-empty list'):
        sl.grid_settings(dict(grid=dict(lam=[])))


def test_rows_of_a_config_replace_default_rows_and_set_other_sections():
    rows = dict(e=dict(grid={'lam': [1.0],
                             'mode_discovery.target': ['medoid']}))
    sel = sl.selection_settings(Config(dict(selection=dict(rows=rows))))
    assert sel['rows']['e'] == rows['e']
    assert sel['rows']['b'] == sl.DEFAULT_SELECTION['rows']['b']
    base = dict(synthesis=dict(ipc=10, lam=0.0),
                mode_discovery=dict(type='KMeansModes', n_init=10))
    point = sl.grid_settings(sel['rows']['e'])[0]
    got = sl.with_synthesis(base, point)
    assert got['synthesis'] == dict(ipc=10, lam=1.0)
    assert got['mode_discovery'] == dict(type='KMeansModes', n_init=10,
                                         target='medoid')
    assert base['mode_discovery'] == dict(type='KMeansModes', n_init=10)
    assert sl._name('e', point) == 'e_lam1p0_targetmedoid'


def test_pick_best_highest_then_earliest():
    assert sl.pick_best([dict(val_acc=v) for v in (90.0, 93.5, 92.0)]) == 1
    assert sl.pick_best([dict(val_acc=v) for v in (91.0, 93.5, 93.5)]) == 1
    assert sl.pick_best([dict(val_acc=88.0)]) == 0
    # equal numbers of correct images whose float32 means differ in the
    # last bits (values seen in a real selection run) are a tie
    tied = [97.21253967285156, 97.21254221598308, 97.21254475911458]
    assert sl.pick_best([dict(val_acc=v) for v in tied[::-1]]) == 0
    assert sl.pick_best([dict(val_acc=96.9)] + [
        dict(val_acc=v) for v in tied]) == 1
    assert sl.pick_best([dict(val_acc=97.0), dict(val_acc=97.01)]) == 1


def test_holdout_config_refuses_test_real_data():
    cfg = Config(dict(real_data=dict(type='DigitsDataset', split='test'),
                      evaluation=dict()))
    with pytest.raises(UserError, match="split='test'"):
        sl.holdout_config(cfg)


def _cfg(ckpt):
    """Like the shipped digits configs (real train, evaluation on test),
    tiny: 4 steps, IPC 1, 3 training iterations."""
    return Config(dict(
        seed=0,
        generator=dict(type='PixelTeacherGenerator',
                       model_config=TEACHER_CFG, checkpoint=ckpt,
                       device='cpu'),
        real_data=dict(type='DigitsDataset', split='train'),
        mode_discovery=dict(type='KMeansModes', n_init=1),
        synthesis=dict(ipc=1, steps=4, t_stop=2, batch_size=16),
        evaluation=dict(test_data=dict(type='DigitsDataset', split='test'),
                        classifiers=[dict(type='ConvNet', width=8, depth=1)],
                        seeds=(0, 1), iterations=3),
        selection=dict(rows=dict(
            a=dict(fixed=dict(source='real_random')),
            e=dict(fixed=dict(init='noise'),
                   grid=dict(lam=[0.0, 1.0], guidance=[0.0, 1.0]))))))


def test_selection_never_reads_the_test_split(tmp_path, teacher_ckpt,
                                              monkeypatch):
    splits, test_sets = [], []
    real_load = digits_mod.load_digits_split

    def recording_load(split='train', *a, **k):
        splits.append(split)
        return real_load(split, *a, **k)

    real_train = ev.train_and_test

    def recording_train(net_cfg, x, y, x_test, y_test, *a, **k):
        test_sets.append((x_test.clone(), y_test.clone()))
        return real_train(net_cfg, x, y, x_test, y_test, *a, **k)

    monkeypatch.setattr(digits_mod, 'load_digits_split', recording_load)
    monkeypatch.setattr(ev, 'train_and_test', recording_train)
    out = str(tmp_path / 'sel')
    res = sl.select(_cfg(teacher_ckpt), out, rows=['a', 'e'])
    assert splits and set(splits) == {'train'}
    # every classifier was scored on exactly the held-out training images
    x_tr, y_tr = real_load('train')
    fit, val = stratified_holdout(y_tr, 0.2, 0)
    assert len(test_sets) == 2 * (1 + 4)  # 2 seeds x (row a + 4 settings)
    for x_test, y_test in test_sets:
        assert np.array_equal(x_test.numpy(), x_tr[val])
        assert np.array_equal(y_test.numpy(), y_tr[val])
    cands = res['rows']['e']['candidates']
    assert [c['settings'] for c in cands] == sl.grid_settings(
        _cfg(teacher_ckpt).selection.rows.e.to_dict())
    assert res['rows']['e']['best'] == cands[sl.pick_best(cands)]
    with open(os.path.join(out, 'selection.json')) as f:
        assert json.load(f)['rows']['e']['best']['settings'] == \
            res['rows']['e']['best']['settings']
    # modes (IPC 1 = k-means with one cluster = class mean) come from the
    # fit part only, not from the whole training split
    guided = [c for c in cands if c['settings']['lam'] > 0][0]
    modes = torch.load(os.path.join(guided['folder'], 'modes.pt'),
                       weights_only=True)['modes']
    for c in range(10):
        fit_mean = x_tr[fit][y_tr[fit] == c].mean(0)
        np.testing.assert_allclose(modes[c, 0].numpy(), fit_mean, atol=1e-5)
    all_mean = x_tr[y_tr == 0].mean(0)
    assert np.abs(modes[0, 0].numpy() - all_mean).max() > 1e-3
    # the real baseline draws from the fit part only
    with open(os.path.join(res['rows']['a']['best']['folder'],
                           'manifest.json')) as f:
        assert json.load(f)['settings']['real_data']['part'] == 'fit'

    # a second run reuses every finished candidate
    def no_synthesis(self):
        raise AssertionError('candidate synthesised again')

    monkeypatch.setattr(sl.Synthesizer, 'run', no_synthesis)
    again = sl.select(_cfg(teacher_ckpt), out, rows=['a', 'e'])
    for r in ('a', 'e'):
        assert [(c['settings'], c['val_acc']) for c in
                again['rows'][r]['candidates']] == \
            [(c['settings'], c['val_acc']) for c in res['rows'][r]['candidates']]


def test_run_rows_uses_the_config_data(tmp_path, teacher_ckpt, monkeypatch):
    """The table runner evaluates the selected settings on the config's
    own test split with modes from the whole training split."""
    seen = []
    real_train = ev.train_and_test

    def recording_train(net_cfg, x, y, x_test, y_test, *a, **k):
        seen.append(len(x_test))
        return real_train(net_cfg, x, y, x_test, y_test, *a, **k)

    monkeypatch.setattr(ev, 'train_and_test', recording_train)
    res = sl.run_rows(_cfg(teacher_ckpt), dict(e=dict(lam=1.0, guidance=0.0)),
                      str(tmp_path / 'table'))
    assert seen == [360, 360]
    assert res['e']['settings'] == dict(lam=1.0, guidance=0.0)
    x_tr, y_tr = load_digits_split('train')
    modes = torch.load(str(tmp_path / 'table' / 'e' / 'modes.pt'),
                       weights_only=True)['modes']
    np.testing.assert_allclose(modes[4, 0].numpy(),
                               x_tr[y_tr == 4].mean(0), atol=1e-5)


def test_unknown_row_is_a_one_line_error(tmp_path, teacher_ckpt):
    with pytest.raises(UserError, match=r"unknown selection row 'x'"):
        sl.select(_cfg(teacher_ckpt), str(tmp_path / 's'), rows=['x'])
    assert not os.path.exists(tmp_path / 's')


@pytest.mark.parametrize('name', sorted(
    f for f in os.listdir(os.path.join(ROOT, 'configs/mgd3'))
    if f.startswith('mgd3_digits')))
def test_digits_configs_and_every_selection_setting_are_valid(name):
    """Each digits config, and each grid point of its selection rows,
    passes the synthesis checks and builds its mode discovery."""
    from mmdistill.synthesis.pipeline import check_settings
    from mmdistill.registry import SYNTHESIS
    cfg = sl.to_plain(Config.fromfile(os.path.join(ROOT, 'configs/mgd3',
                                                   name)))
    points = [s for row in sl.selection_settings(cfg)['rows'].values()
              for s in sl.grid_settings(row)]
    assert len(points) >= 6
    for point in [{}] + points:
        settings = sl.synthesis_settings(sl.with_synthesis(cfg, point))
        check_settings(settings)
        SYNTHESIS.build({**settings['mode_discovery'], 'seed': 0})


def test_parallel_selection_gives_the_same_result(tmp_path, teacher_ckpt):
    """Candidates evaluated by 2 worker processes: the same candidates,
    scores and choice as in one process."""
    one = sl.select(_cfg(teacher_ckpt), str(tmp_path / 'one'),
                    rows=['a', 'e'], log=lambda *a: None)
    two = sl.select(_cfg(teacher_ckpt), str(tmp_path / 'two'),
                    rows=['a', 'e'], log=lambda *a: None, jobs=2)
    for r in ('a', 'e'):
        def strip(res):  # json: NaN diversity (IPC 1) compares equal
            return json.dumps([{k: v for k, v in c.items() if k != 'folder'}
                               for c in res['rows'][r]['candidates']])
        assert strip(one) == strip(two)
        assert one['rows'][r]['best']['settings'] == \
            two['rows'][r]['best']['settings']
    with pytest.raises(UserError, match='jobs must be a positive integer'):
        sl.select(_cfg(teacher_ckpt), str(tmp_path / 'x'), jobs=0)


def test_pool_seeds_and_paired_gap():
    """Pooling over synthesis seeds keeps every accuracy; the paired gap is
    the per-seed difference of the classifier-seed means."""
    per = {3: dict(ConvNet=dict(accs=[90.0, 92.0], mean=91.0, std=1.0),
                   diversity=0.2, num_images=10),
           7: dict(ConvNet=dict(accs=[80.0, 86.0], mean=83.0, std=3.0),
                   diversity=0.4, num_images=10)}
    pooled = sl.pool_seeds(per)
    assert pooled['seeds'] == [3, 7]
    assert pooled['ConvNet']['accs'] == [90.0, 92.0, 80.0, 86.0]
    assert pooled['ConvNet']['mean'] == pytest.approx(87.0)
    assert pooled['ConvNet']['std'] == pytest.approx(np.std([90, 92, 80, 86]))
    assert pooled['ConvNet']['seed_means'] == [91.0, 83.0]
    assert pooled['diversity'] == pytest.approx(0.3)
    base = sl.pool_seeds({3: dict(ConvNet=dict(accs=[89.0], mean=89.0)),
                          7: dict(ConvNet=dict(accs=[85.0], mean=85.0))})
    gap = sl.paired_gap(pooled, base, 'ConvNet')
    assert gap['diffs'] == [2.0, -2.0]
    assert gap['mean'] == pytest.approx(0.0)
    assert gap['std'] == pytest.approx(2.0)
    assert gap['wins'] == 1
    other = sl.pool_seeds({3: per[3]})
    with pytest.raises(UserError, match='different synthesis seeds'):
        sl.paired_gap(pooled, other, 'ConvNet')


def test_run_rows_over_synthesis_seeds(tmp_path, teacher_ckpt):
    """--seeds: one folder per synthesis seed; seed s reproduces the
    single-seed run of a config with seed = s, another seed gives other
    images, and the pooled accuracies are those of the per-seed runs."""
    cfg = _cfg(teacher_ckpt)
    row = dict(e=dict(lam=1.0, guidance=0.0))
    single = sl.run_rows(cfg, row, str(tmp_path / 'one'))
    multi = sl.run_rows(cfg, row, str(tmp_path / 'many'), seeds=[0, 5])

    def images(folder):
        from mmdistill.synthesis.evaluate import load_synthetic
        return load_synthetic(str(folder), 8, 1)[0]

    x0 = images(tmp_path / 'one' / 'e')
    assert torch.equal(images(tmp_path / 'many' / 'e_seed0'), x0)
    assert not torch.equal(images(tmp_path / 'many' / 'e_seed5'), x0)
    with open(tmp_path / 'many' / 'e_seed5' / 'eval.json') as f:
        run5 = json.load(f)
    assert multi['e']['ConvNet']['accs'] == \
        single['e']['ConvNet']['accs'] + run5['ConvNet']['accs']
    assert multi['e']['ConvNet']['seed_means'] == [
        single['e']['ConvNet']['mean'], run5['ConvNet']['mean']]
    assert multi['e']['settings'] == row['e']
    with pytest.raises(UserError, match='distinct'):
        sl.run_rows(cfg, row, str(tmp_path / 'bad'), seeds=[1, 1])


def test_seed_plot_tool(tmp_path):
    """tools/mgd3_plot.py draws pooled tables (two files merged into one
    panel) and refuses a table without per-seed results in one line."""
    import subprocess
    import sys
    row = lambda m: dict(ConvNet=dict(mean=m, seed_means=[m - 1, m + 1]))  # noqa: E731
    (tmp_path / 'p1.json').write_text(json.dumps(dict(b=row(94.0),
                                                      e=row(96.0))))
    (tmp_path / 'p2.json').write_text(json.dumps(dict(f=row(98.0))))
    (tmp_path / 'old.json').write_text(json.dumps(
        dict(b=dict(ConvNet=dict(mean=94.0)))))
    tool = os.path.join(ROOT, 'tools/mgd3_plot.py')
    out = tmp_path / 'fig.png'
    r = subprocess.run([sys.executable, tool,
                        f'{tmp_path}/p1.json+{tmp_path}/p2.json',
                        '--titles', 'IPC 10', '--out', str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    bad = tmp_path / 'bad.png'
    r = subprocess.run([sys.executable, tool, str(tmp_path / 'old.json'),
                        '--out', str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and not bad.exists()
    assert r.stderr.strip().count('\n') == 0
    assert 'run tools/mgd3_table.py with --seeds' in r.stderr
