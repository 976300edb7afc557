"""Sharded training (``model_wrapper_cfg=dict(type='DistillFSDP')``) on two
CPU processes (gloo) with a tiny SD-family model (UNet2DConditionModel +
VAE + CLIP text encoder, the SD-1.5 configs with sizes overridden): stage 1
and a stage-2 halving give the DDP run's losses and weights, each rank holds
about half of DDP's student state, the gathered checkpoints load in the
unsharded tools, and a killed run resumes exactly; a sharded teacher
(``shard_teacher=True``) halves the teacher's memory too."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from test_diffusers_configs import FAMILIES, REPO, _cfg, _write_data

# eight 2-process runs, ~2 min on 2 cores: in the default run, as the proof
# that sharded training works (CI has no GPU)

S1, S2 = FAMILIES['sd']['stage1'], FAMILIES['sd']['stage2']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def sd(tmp_path_factory):
    from _tiny_diffusers import make_tiny_sd
    root = tmp_path_factory.mktemp('fsdp')
    folder = str(root / 'model')
    make_tiny_sd(folder)
    data = str(root / 'data')
    _write_data(data, 'sd', FAMILIES['sd']['image_size'])
    return root, folder, data


def _write(root, name, path, folder, data, **opts):
    cfg = _cfg(path, 'sd', folder, data, str(root / name), **{
        'randomness': dict(seed=0), 'param_scheduler': [],
        'default_hooks.checkpoint.interval': 2,
        'custom_imports': dict(imports=['_stop_hook'],
                               allow_failed_imports=False),
        **opts})
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='StateMemoryHook')] + list(opts.pop('extra_hooks', []))
    out = root / f'{name}.py'
    cfg.dump(str(out))
    return out


def _torchrun(cfg, work_dir, *extra):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO,
                                                              'tests')]))
    cmd = [sys.executable, '-m', 'torch.distributed.run',
           '--nproc_per_node=2', f'--master_port={_free_port()}',
           os.path.join(REPO, 'tools/train.py'), str(cfg), '--launcher',
           'pytorch', '--work-dir', str(work_dir), *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _losses(work_dir):
    (log, ) = [os.path.join(d, 'vis_data', 'scalars.json')
               for d in (os.path.join(work_dir, e)
                         for e in sorted(os.listdir(work_dir)))
               if os.path.isfile(os.path.join(d, 'vis_data',
                                              'scalars.json'))][-1:]
    with open(log) as f:
        rows = [json.loads(line) for line in f]
    return {r['step']: r['loss'] for r in rows if 'loss' in r}


def _state(path):
    return torch.load(path, weights_only=False)['state_dict']


def _assert_close_states(a, b, atol):
    assert set(a) == set(b)
    for k in a:
        if torch.is_floating_point(a[k]):
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0,
                                       msg=k)


FSDP = {'model_wrapper_cfg': dict(type='DistillFSDP')}


def test_fsdp_equals_ddp_halves_the_state_and_resumes(sd):
    root, folder, data = sd
    runs = {}
    for name, wrap in (('ddp', {}), ('fsdp', FSDP), ('fsdp_t', {
            'model_wrapper_cfg': dict(type='DistillFSDP',
                                      shard_teacher=True)})):
        cfg = _write(root, f's1_{name}', S1, folder, data,
                     **{'train_cfg.max_iters': 4, **wrap})
        r = _torchrun(cfg, root / f's1_{name}')
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name] = root / f's1_{name}'
    # same seed: the same losses and, after 4 Adam steps, the same weights
    la = _losses(runs['ddp'])
    assert sorted(la) == [1, 2, 3, 4]
    for name in ('fsdp', 'fsdp_t'):
        lb = _losses(runs[name])
        for step in la:
            assert lb[step] == pytest.approx(la[step], rel=1e-4, abs=1e-6)
    s_ddp = _state(runs['ddp'] / 'iter_4.pth')
    s_fsdp = _state(runs['fsdp'] / 'iter_4.pth')
    assert all(not hasattr(v, 'to_local') for v in s_fsdp.values())
    _assert_close_states(s_ddp, s_fsdp, atol=1e-4)
    _assert_close_states(s_ddp, _state(runs['fsdp_t'] / 'iter_4.pth'),
                         atol=1e-4)
    # per rank: the student, its EMA and Adam's moments are split in two
    for rank in (0, 1):
        with open(runs['ddp'] / f'state_memory_rank{rank}.json') as f:
            ddp = json.load(f)
        with open(runs['fsdp'] / f'state_memory_rank{rank}.json') as f:
            fsdp = json.load(f)
        part = ('student', 'ema', 'moments')
        ratio = sum(fsdp[k] for k in part) / sum(ddp[k] for k in part)
        assert 0.45 < ratio < 0.6, (ddp, fsdp)
        assert fsdp['teacher'] == ddp['teacher']  # replicated
        with open(runs['fsdp_t'] / f'state_memory_rank{rank}.json') as f:
            sharded_teacher = json.load(f)['teacher']
        assert 0.45 < sharded_teacher / ddp['teacher'] < 0.6
    # the gathered checkpoint is an ordinary one for the unsharded tools
    from mmdistill.apis import load_student
    st = load_student(str(runs['fsdp'] / 'iter_4.pth'),
                      str(root / 's1_fsdp.py'))
    assert st.net.model.time_embedding.cond_proj.weight.abs().sum() > 0
    # killed after iteration 3 (checkpoint at 2), then --resume
    cfg = _write(root, 's1_kill', S1, folder, data,
                 **{'train_cfg.max_iters': 4, **FSDP, 'extra_hooks': [
                     dict(type='ExitAtIterHook', exit_after=3)]})
    r = _torchrun(cfg, root / 's1_kill')
    assert r.returncode != 0 and not (root / 's1_kill' / 'iter_4.pth'
                                      ).exists()
    cfg = _write(root, 's1_kill', S1, folder, data,
                 **{'train_cfg.max_iters': 4, **FSDP})
    r = _torchrun(cfg, root / 's1_kill', '--resume')
    assert r.returncode == 0, r.stderr[-3000:]
    _assert_close_states(s_fsdp, _state(root / 's1_kill' / 'iter_4.pth'),
                         atol=1e-6)
    # stage 2, one halving (2 -> 1 steps) from the stage-1 checkpoint
    outs = {}
    for name, wrap in (('ddp', {}), ('fsdp', FSDP)):
        cfg = _write(root, f's2_{name}', S2, folder, data, **{
            'train_cfg.max_iters': 2, 'model.num_steps': 2,
            'model.teacher_ckpt': str(runs['ddp'] / 'iter_4.pth'),
            'model.num_classes': 0,
            'model.image_shape': FAMILIES['sd']['image_shape'],
            'custom_hooks': [dict(type='PortableCheckpointHook'),
                             dict(type='ProgressiveDistillationHook',
                                  n_start=2, n_end=1, iters_per_stage=1)],
            **wrap})
        r = _torchrun(cfg, root / f's2_{name}')
        assert r.returncode == 0, r.stderr[-3000:]
        outs[name] = root / f's2_{name}'
    la, lb = _losses(outs['ddp']), _losses(outs['fsdp'])
    for step in la:
        assert lb[step] == pytest.approx(la[step], rel=1e-4, abs=1e-6)
    _assert_close_states(
        _state(outs['ddp'] / 'student_1step.pth'),
        _state(outs['fsdp'] / 'student_1step.pth'), atol=1e-4)


def test_fsdp_refusals_are_one_line():
    """A LoRA student, a model without a teacher, unknown options and a
    run without a process group: each a one-line error naming the fix."""
    from test_lora import LORA, S1, _build

    from mmdistill.models import DistillFSDP
    from mmdistill.utils import UserError
    lora = _build(S1, student_lora=LORA)
    with pytest.raises(UserError, match='LoRA student.*train it with DDP'):
        DistillFSDP(lora)
    with pytest.raises(UserError, match='unknown options'):
        DistillFSDP(lora, shard_teachr=True)
    with pytest.raises(UserError, match='shards a distiller'):
        DistillFSDP(torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match='needs a distributed launch'):
        DistillFSDP(_build(S1))
