"""The main job end to end (tiny iteration counts): teacher -> stage 1 ->
progressive -> report with table and pictures."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_demo_quick_writes_report(tmp_path):
    wd = tmp_path / 'demo'
    compact = ['--teacher-type', 'compact']
    r = subprocess.run([sys.executable, 'tools/demo.py', '--quick',
                        '--work-dir', str(wd)] + compact, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ('report.md', 'report.json', 'samples.png',
                 'fid_vs_nfe.png'):
        assert (wd / name).is_file(), name
    rows = json.load(open(wd / 'report.json'))['rows']
    students = sorted({r['steps'] for r in rows if r['model'] == 'student'})
    assert students == [1, 2, 4, 8]
    # every generated row is measured on the same number of samples and
    # the students pay one network evaluation per step
    for row in rows:
        if row['model'] == 'student':
            assert row['nfe'] == row['steps']
        if row['model'] == 'teacher' and row['w']:
            assert row['nfe'] == 2 * row['steps']
    # a second run reuses the finished stages
    r2 = subprocess.run([sys.executable, 'tools/demo.py', '--quick',
                         '--work-dir', str(wd)] + compact, cwd=ROOT,
                        capture_output=True, text=True)
    assert r2.returncode == 0 and r2.stdout.count('reusing') == 3


@pytest.mark.parametrize('args, words', [
    (['--n-start', '24'], ['--n-start must be a power of two', '24']),
    (['--teacher-ckpt', 'no/such/teacher.pth'],
     ['no/such/teacher.pth does not exist']),
])
def test_demo_bad_arguments(tmp_path, args, words):
    from _reliability import assert_one_line_error
    wd = tmp_path / 'demo'
    r = subprocess.run([sys.executable, 'tools/demo.py', '--quick',
                        '--work-dir', str(wd)] + args, cwd=ROOT,
                       capture_output=True, text=True)
    assert_one_line_error(r.returncode, r.stderr, *words)
    # refused before any stage ran
    assert not (wd / 'teacher').exists() and not (wd / 'stage1').exists()


def test_demo_stage2_config_gives_n():
    """--n-start defaults to the stage-2 config's model.num_steps; the
    demo finds the halving hook by its type, not a fixed position."""
    import importlib.util
    from mmdistill.utils import UserError
    spec = importlib.util.spec_from_file_location(
        'demo', os.path.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    args = demo.parse_args([])
    assert args.n_start is None and args.stage2_config == demo.STAGE2_CFG
    assert demo.stage2_settings(demo.STAGE2_CFG) == (32, 1)
    assert demo.stage2_settings(
        'configs/progressive/progressive_digits_128to1.py') == (128, 1)
    with pytest.raises(UserError, match='one ProgressiveDistillationHook'):
        demo.stage2_settings('configs/teacher/cfg_unet_digits.py')


@pytest.mark.slow
def test_demo_quick_on_the_real_format_teacher(tmp_path):
    """The default (what `make demo` runs): a UNet2DModel teacher trained,
    written as a DDPM folder, both stages read from the folder and distil
    it into a v student, the report measures the folder's teacher and the
    students."""
    wd = tmp_path / 'demo'
    r = subprocess.run([sys.executable, 'tools/demo.py', '--quick',
                        '--work-dir', str(wd)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    folder = wd / 'teacher' / 'ddpm-folder'
    for f in ('model_index.json', 'unet/config.json',
              'scheduler/scheduler_config.json'):
        assert (folder / f).is_file(), f
    cfg = open(wd / 'configs' / 'stage1' /
               'guided_distill_ddpm_digits_v.py').read()
    assert str(folder) in cfg and 'teacher_ckpt=None' in cfg
    assert "student_prediction_type='v'" in cfg
    rows = json.load(open(wd / 'report.json'))['rows']
    assert sorted({r['steps'] for r in rows if r['model'] == 'student'}) \
        == [1, 2, 4, 8]
