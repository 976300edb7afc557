"""The launch scripts (dist_test.sh, slurm_train.sh, slurm_test.sh) and the
small tools: print_config, publish_model, get_flops, test.py --out,
train.py --auto-scale-lr."""
import hashlib
import importlib.util
import json
import os
import socket
import stat
import subprocess
import sys

import pytest
import torch

from _reliability import ROOT, assert_one_line_error, env

TINY = ['model.denoiser.base_channels=8', 'train_dataloader.batch_size=16',
        'log_level=WARNING', 'val_cfg=None', 'val_dataloader=None',
        'val_evaluator=None', 'custom_hooks.1.interval=0']


def _tool(path):
    spec = importlib.util.spec_from_file_location(
        os.path.basename(path)[:-3], os.path.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd, timeout=300, **envs):
    return subprocess.run(cmd, cwd=ROOT, env=env(**envs),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def tiny_eval(tmp_path_factory):
    """A width-8 digits teacher checkpoint and an evaluation config of 40
    samples at 2 steps (FID and accuracy)."""
    from mmdistill.registry import MODELS
    from mmdistill.utils.config import load_config
    d = tmp_path_factory.mktemp('tiny_eval')
    base = os.path.join(ROOT, 'configs/teacher/cfg_unet_digits_eval.py')
    torch.manual_seed(0)
    cfg = load_config(base, ['model.denoiser.base_channels=8'])
    model = MODELS.build(cfg.model)
    ckpt = d / 'teacher.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='tiny')),
               ckpt)
    cls = os.path.join(ROOT, 'checkpoints/digits_classifier.pth')
    (d / 'eval.py').write_text(f'''
_base_ = [{base!r}]
model = dict(denoiser=dict(base_channels=8))
_m = dict(fake_nums=40, sample_kwargs=dict(steps=2, guidance=1.0),
          extractor=dict(type='classifier', checkpoint={cls!r}),
          real_stats_cache={str(d / "stats")!r})
test_evaluator = dict(_delete_=True, type='Evaluator', metrics=[
    dict(type='FID', **_m), dict(type='SampleAccuracy', **_m)])
test_dataloader = dict(batch_size=7)
test_cfg = dict(batch_size=7, progress=False)
''')
    return d / 'eval.py', ckpt


def _fake_srun(folder):
    """An ``srun`` that records its argv and starts ``--ntasks`` copies of
    the command with Slurm's task variables."""
    path = folder / 'srun'
    path.write_text('''#!/usr/bin/env bash
printf '%s\\n' "$@" > "$SRUN_ARGV"
n=1
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
    case "$1" in --ntasks=*) n=${1#--ntasks=} ;; esac
    shift
done
pids=()
for ((i = 0; i < n; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$n \\
        SLURM_NODELIST=localhost "$@" &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
''')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.slow  # three evaluation processes (~25 s)
def test_test_out_and_dist_test_equal_one_process(tmp_path, tiny_eval):
    cfg, ckpt = tiny_eval
    out1 = tmp_path / 'one' / 'results.json'
    r = _run([sys.executable, 'tools/test.py', str(cfg), str(ckpt),
              '--work-dir', str(tmp_path / 'w1'), '--out', str(out1)])
    assert r.returncode == 0, r.stderr[-3000:]
    one = json.loads(out1.read_text())
    assert one['processes'] == 1
    assert set(one['metrics']) == {'FID-40/2step-w1', 'Acc-40/2step-w1'}
    assert json.loads((tmp_path / 'w1' / 'test_results.json').read_text(
    ))['metrics'] == one['metrics']
    out2 = tmp_path / 'two.json'
    r = _run(['bash', 'tools/dist_test.sh', str(cfg), str(ckpt), '2',
              '--work-dir', str(tmp_path / 'w2'), '--out', str(out2)],
             PORT=_free_port(), PYTHON=sys.executable)
    assert r.returncode == 0, r.stderr[-3000:]
    two = json.loads(out2.read_text())
    assert two['processes'] == 2
    for k, v in one['metrics'].items():
        assert two['metrics'][k] == pytest.approx(v, rel=1e-9, abs=1e-9), k
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]


def test_test_out_folder_is_refused(tmp_path, tiny_eval):
    cfg, ckpt = tiny_eval
    r = _run([sys.executable, 'tools/test.py', str(cfg), str(ckpt),
              '--work-dir', str(tmp_path / 'w'), '--out', str(tmp_path)])
    assert_one_line_error(r.returncode, r.stderr, '--out', 'is a folder')


def test_slurm_test_runs_test_py_through_srun(tmp_path, tiny_eval):
    cfg, ckpt = tiny_eval
    _fake_srun(tmp_path)
    argv, out = tmp_path / 'argv.txt', tmp_path / 'res.json'
    r = _run(['bash', 'tools/slurm_test.sh', 'gpu', 'eval-job', str(cfg),
              str(ckpt), '--work-dir', str(tmp_path / 'w'), '--out',
              str(out)], GPUS=2, SRUN_ARGV=argv, PYTHON=sys.executable,
             MASTER_PORT=_free_port(),
             PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    assert r.returncode == 0, r.stderr[-3000:]
    args = argv.read_text().splitlines()
    for opt in ('--partition=gpu', '--job-name=eval-job', '--ntasks=2',
                '--ntasks-per-node=2', '--gres=gpu:2', '--kill-on-bad-exit=1'):
        assert opt in args, (opt, args)
    cmd = args[args.index(sys.executable):]
    assert cmd[1:3] == ['-u', os.path.join(ROOT, 'tools', 'test.py')]
    assert cmd[3:5] == [str(cfg), str(ckpt)]
    assert cmd[5:7] == ['--launcher', 'slurm']
    assert json.loads(out.read_text())['processes'] == 2


def test_slurm_train_with_auto_scale_lr(tmp_path):
    """srun starts two tasks of tools/train.py --launcher slurm (CPU, gloo);
    --auto-scale-lr scales the lr by 2 processes x 16 / 64."""
    _fake_srun(tmp_path)
    argv, wd = tmp_path / 'argv.txt', tmp_path / 'work'
    r = _run(['bash', 'tools/slurm_train.sh', 'cpu', 'train-job',
              'configs/teacher/cfg_unet_digits.py', str(wd),
              '--auto-scale-lr', '--cfg-options', *TINY,
              'train_cfg.max_iters=1', 'auto_scale_lr.base_batch_size=64'],
             GPUS=2, SRUN_ARGV=argv, PYTHON=sys.executable,
             MASTER_PORT=_free_port(), SRUN_ARGS='--time=5',
             PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    assert r.returncode == 0, r.stderr[-3000:]
    args = argv.read_text().splitlines()
    assert '--time=5' in args and '--ntasks=2' in args
    i = args.index(sys.executable)
    assert args[i + 2] == os.path.join(ROOT, 'tools', 'train.py')
    assert args[i + 3:i + 8] == ['configs/teacher/cfg_unet_digits.py',
                                 '--work-dir', str(wd), '--launcher',
                                 'slurm']
    from mmdistill.engine.runner import resume_allowlist
    with torch.serialization.safe_globals(resume_allowlist()):
        ck = torch.load(wd / 'iter_1.pth', weights_only=True)
    group = ck['optimizer']['param_groups'][0]
    # the teacher's AdamW lr 2e-3 x (2 x 16) / 64
    assert group['initial_lr'] == pytest.approx(2e-3 * 32 / 64)


def test_auto_scale_lr_one_process_and_missing_base(tmp_path):
    from _reliability import run_train_inprocess
    code, err = run_train_inprocess(
        'configs/teacher/cfg_unet_digits.py', tmp_path / 'w',
        'train_cfg.max_iters=1', extra=['--auto-scale-lr'])
    assert_one_line_error(code, err, '--auto-scale-lr needs auto_scale_lr',
                          'base_batch_size')
    code, err = run_train_inprocess(
        'configs/teacher/cfg_unet_digits.py', tmp_path / 'w2',
        'train_cfg.max_iters=1', 'auto_scale_lr.base_batch_size=4',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
        extra=['--auto-scale-lr'])
    assert code == 0, err[-3000:]
    ck = torch.load(tmp_path / 'w2' / 'iter_1.pth', weights_only=True)
    assert ck['optimizer']['param_groups'][0]['initial_lr'] == \
        pytest.approx(2e-3 * 16 / 4)


@pytest.mark.parametrize('path', [
    'configs/guided_distill/guided_distill_imagenet64.py',
    'configs/guided_distill/guided_distill_cifar10.py',
    'configs/guided_distill/guided_distill_dit_xl2_256.py',
    'configs/guided_distill/guided_distill_sd15_512.py',
    'configs/progressive/progressive_cifar10_4096to1.py',
    'configs/progressive/progressive_imagenet64_512to1.py',
    'configs/progressive/progressive_dit_xl2_256_32to1.py',
    'configs/progressive/progressive_sd15_512_16to1.py',
])
def test_multi_gpu_configs_name_their_base_batch(path):
    """base_batch_size is the total batch the comment names: the per-GPU
    batch times the GPUs of the recipe."""
    import re

    from mmdistill.utils.config import load_config
    cfg = load_config(os.path.join(ROOT, path))
    assert cfg.auto_scale_lr.enable is False
    text = open(os.path.join(ROOT, path)).read()
    gpus, per = map(int, re.search(r'(\d+) GPUs x (\d+)', text).groups())
    assert per == cfg.train_dataloader.batch_size
    assert cfg.auto_scale_lr.base_batch_size == gpus * per


def test_print_config_merges_options(tmp_path):
    out = tmp_path / 'merged.py'
    r = _run([sys.executable, 'tools/misc/print_config.py',
              'configs/guided_distill/guided_distill_digits.py',
              '--cfg-options', 'train_cfg.max_iters=7', 'model.w_max=3.0',
              '--save-path', str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'max_iters=7' in r.stdout and 'w_max=3.0' in r.stdout
    # the teacher and the schedule come from the _base_ files
    assert "type='GuidanceDistiller'" in r.stdout
    assert "type='CompactUNet'" in r.stdout
    from mmengine.config import Config
    assert Config.fromfile(str(out)).train_cfg.max_iters == 7
    r = _run([sys.executable, 'tools/misc/print_config.py', 'no/such.py'])
    assert_one_line_error(r.returncode, r.stderr, 'config not found')


def test_publish_model_strips_and_hashes(tmp_path):
    src = tmp_path / 'iter_5.pth'
    weights = {'net.w': torch.randn(3, 3), 'num_steps': torch.tensor(4)}
    torch.save(dict(meta=dict(iter=5, seed=0), state_dict=weights,
                    optimizer=dict(state={}, param_groups=[dict(lr=1.0)]),
                    message_hub=dict(log_scalars={}),
                    param_schedulers=[dict(last_step=5)]), src)
    r = _run([sys.executable, 'tools/model_converters/publish_model.py',
              str(src), str(tmp_path / 'pub' / 'teacher.pth')])
    assert r.returncode == 0, r.stderr[-2000:]
    files = os.listdir(tmp_path / 'pub')
    assert len(files) == 1 and files[0].startswith('teacher-')
    out = tmp_path / 'pub' / files[0]
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert files[0] == f'teacher-{sha[:8]}.pth'
    ck = torch.load(out, weights_only=True)
    assert set(ck) == {'meta', 'state_dict'} and ck['meta']['iter'] == 5
    assert all(torch.equal(ck['state_dict'][k], v)
               for k, v in weights.items())
    from mmdistill.utils import load_state_dict
    assert set(load_state_dict(out)) == set(weights)
    # the same content again: the target exists and is not overwritten
    before = out.read_bytes()
    r = _run([sys.executable, 'tools/model_converters/publish_model.py',
              str(src), str(tmp_path / 'pub' / 'teacher.pth')])
    assert_one_line_error(r.returncode, r.stderr, 'already exists',
                          'refusing to overwrite')
    assert out.read_bytes() == before
    assert os.listdir(tmp_path / 'pub') == files
    r = _run([sys.executable, 'tools/model_converters/publish_model.py',
              str(tmp_path / 'missing.pth'), str(tmp_path / 'x.pth')])
    assert_one_line_error(r.returncode, r.stderr, 'not found',
                          'missing.pth')


def test_publish_model_of_a_training_checkpoint(tmp_path):
    """A real checkpoint (message hub, optimizer, schedulers) publishes to
    a file tools/test.py and init_model read."""
    from _reliability import run_train_inprocess
    code, err = run_train_inprocess('configs/teacher/cfg_unet_digits.py',
                                    tmp_path / 'w', 'train_cfg.max_iters=1')
    assert code == 0, err[-3000:]
    pub = _tool('tools/model_converters/publish_model.py')
    final, dropped = pub.publish(str(tmp_path / 'w' / 'iter_1.pth'),
                                 str(tmp_path / 'teacher.pth'))
    assert {'optimizer', 'message_hub'} <= set(dropped)
    from mmdistill.apis import init_model
    from mmdistill.utils.config import load_config
    cfg = load_config(os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py'),
                      ['model.denoiser.base_channels=8'])
    init_model(cfg, final)


def test_flop_count_matches_the_analytic_count():
    flops = _tool('tools/analysis_tools/get_flops.py')
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1),
                              torch.nn.Flatten(), torch.nn.Linear(32, 5))
    x = torch.randn(3, 1, 4, 4)
    total, per_op = flops.count_flops(net, x)
    conv = 2 * 3 * (2 * 4 * 4) * (1 * 3 * 3)  # 2 x outputs x (Cin kh kw)
    linear = 2 * 3 * 32 * 5
    assert total == conv + linear
    assert per_op == {'aten.convolution': conv, 'aten.addmm': linear}
    assert flops.count_params(net) == (2 * 9 + 2) + (32 * 5 + 5)


def test_get_flops_cli_on_the_digits_teacher():
    r = _run([sys.executable, 'tools/analysis_tools/get_flops.py',
              'configs/teacher/cfg_unet_digits.py', '--batch', '2'])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'network: CompactUNet, input [2, 1, 8, 8]' in r.stdout
    from mmdistill.registry import MODELS
    from mmdistill.utils.config import load_config
    cfg = load_config(os.path.join(ROOT, 'configs/teacher/cfg_unet_digits.py'))
    n = sum(p.numel() for p in MODELS.build(cfg.model).net.parameters())
    assert f'({n})' in r.stdout
    r = _run([sys.executable, 'tools/analysis_tools/get_flops.py',
              'configs/teacher/cfg_unet_digits.py', '--shape', '1', '8'])
    assert_one_line_error(r.returncode, r.stderr, '--shape takes C H W')
