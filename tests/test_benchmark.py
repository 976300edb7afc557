"""tools/benchmark.py and tools/benchmarks/: ratio helpers against
hand-computed values, and a quick run writing a well-formed BENCHMARKS
section."""
import json
import os.path as osp
import statistics
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _from_tools(name):
    """Imports ``name`` (the entry point or a benchmarks module) from
    tools/."""
    import importlib
    tools = osp.join(ROOT, 'tools')
    sys.path.insert(0, tools)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(tools)


def _tool():
    return _from_tools('benchmark')


bm = _from_tools('benchmarks.common')


def test_ideal_and_nfe_ratios_by_hand():
    # ideal stage 1 = T_fb + T_f(2B); stage 2 = T_fb + 2 T_f(B)
    assert bm.ideal_stage1(0.030, 0.012) == pytest.approx(0.042)
    assert bm.ideal_stage2(0.030, 0.007) == pytest.approx(0.044)
    # CFG teacher 256 steps = 512 NFE; 4-step student = 4 NFE
    assert bm.nfe(256, cfg=True) == 512 and bm.nfe(4, cfg=False) == 4
    assert bm.nfe_ratio(256, 4) == 128
    assert bm.nfe_ratio(64, 8) == 16
    assert bm.speedup_target(256, 4) == pytest.approx(115.2)
    assert bm.ratio(3.0, 2.0) == 1.5
    assert bm.ratio(1.0, 0.0) == float('inf')


def test_median_time_counts_calls_and_takes_median():
    calls = []
    med, times = bm.median_time(lambda: calls.append(1), repeats=5,
                                warmup=2, number=3)
    assert len(calls) == 2 + 5 * 3
    assert len(times) == 5 and med == statistics.median(times)
    with pytest.raises(ValueError):
        bm.median_time(lambda: None, repeats=0)


def test_markdown_table_and_append(tmp_path):
    table = bm.markdown_table(['a', 'b'], [['x', 1.23456], ['y', 2]])
    assert table.splitlines() == ['| a | b |', '|---|---|',
                                  '| x | 1.235 |', '| y | 2 |']
    with pytest.raises(ValueError):
        bm.markdown_table(['a'], [[1, 2]])
    path = str(tmp_path / 'B.md')
    machine = dict(date='2024-01-02 03:04', cpu='CPU X', cores=2)
    bm.append_section(path, bm.format_section('T1', machine,
                                              [('s', table)]))
    bm.append_section(path, bm.format_section('T2', machine, []))
    text = open(path).read()
    assert text.startswith('# Benchmarks\n\n## T1 (2024-01-02 03:04)')
    assert text.count('# Benchmarks') == 1 and '\n## T2 (' in text
    assert 'Machine: cpu CPU X, cores 2.' in text and '### s' in text


def test_peak_rss_reset_sees_new_allocation():
    if not bm.reset_peak_rss():
        pytest.skip('no /proc peak-RSS reset on this system')
    before = bm.current_rss_mib()
    block = bytearray(64 * 1024 * 1024)  # 64 MiB touched
    block[::4096] = b'\x01' * len(block[::4096])
    assert bm.peak_rss_mib() - before >= 60
    del block


def test_quick_run_writes_section_with_consistent_ratios(tmp_path):
    out, js = str(tmp_path / 'BENCH.md'), str(tmp_path / 'r.json')
    _tool().main(['--quick', '--sections', 'sampling,train', '--out', out,
                  '--json', js, '--repeats', '1', '--teacher-steps', '4',
                  '--student-steps', '1,2', '--sample-batch', '16',
                  '--train-batch', '8'])
    text = open(out).read()
    assert text.startswith('# Benchmarks\n\n## mmdistill benchmark (quick)')
    assert f'cpu {bm.cpu_model()}' in text and 'torch ' in text
    assert 'threads 1' in text
    assert '### Sampling speed-up' in text and '### Distillation' in text
    res = json.load(open(js))
    ips = res['sampling']['images_per_s']
    sp = res['sampling']['speedup']['2vs4']
    assert sp['nfe_ratio'] == 4
    assert sp['speedup'] == pytest.approx(ips['student2'] / ips['teacher4'])
    tr = res['train']
    ms = tr['times_ms']
    assert tr['ideal1_ms'] == pytest.approx(ms['t_fb'] + ms['t_f_2b'])
    assert tr['ideal2_ms'] == pytest.approx(ms['t_fb'] + 2 * ms['t_f_b_w'])
    assert tr['stage1_vs_ideal'] == pytest.approx(ms['stage1'] /
                                                  tr['ideal1_ms'])
    assert tr['stage1_vs_peer'] == pytest.approx(ms['stage1'] / ms['peer'])
    assert f'| {tr["stage1_vs_ideal"]:.4g} |' in text


def test_plain_peer_loss_equals_guidance_distiller_loss():
    """The peer line optimises the same stage-1 objective."""
    import torch
    models = _from_tools('benchmarks.models')
    args = _tool().parse_args(['--quick'])
    s1 = models.build_stage1(args)
    peer = models.build_peer(args, s1)
    data = models.make_batch(8, 'cpu')
    torch.manual_seed(3)
    ref = s1.loss(data['inputs'], data['data_samples'])['loss']
    torch.manual_seed(3)
    got = peer.step(data['inputs'], data['data_samples'])
    assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)


@pytest.mark.slow
def test_quick_run_all_sections(tmp_path):
    """Memory and evaluation run in fresh processes (and torchrun)."""
    out, js = str(tmp_path / 'BENCH.md'), str(tmp_path / 'r.json')
    _tool().main(['--quick', '--sections', 'memory,eval', '--out', out,
                  '--json', js, '--eval-n', '100'])
    res = json.load(open(js))
    fids = res['eval']['fid']
    assert fids[0] == pytest.approx(fids[2], rel=1e-9)  # 1 vs 2 processes
    assert set(res['memory']) == {'teacher', 'stage1', 'stage2', 'peer'}
    assert '### Peak memory' in open(out).read()


def test_mgd3_section(tmp_path):
    """The MGD3 synthesis timing writes the 100 images of IPC 10 (10
    classes x 10) and a verdict against the one-minute target."""
    out, js = str(tmp_path / 'BENCH.md'), str(tmp_path / 'r.json')
    _tool().main(['--quick', '--sections', 'mgd3', '--out', out,
                  '--json', js])
    res = json.load(open(js))['mgd3']
    assert res['images'] == 100 and len(res['seconds']) == 1
    text = open(out).read()
    assert '### MGD3 synthesis, digits IPC 10' in text
    assert 'Target: under 60 s' in text
