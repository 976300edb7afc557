"""The model zoo: every checkpoint in configs/metafile.yml exists, matches
its sha256, loads weights-only, and model_zoo.md quotes the same hashes;
each Reproduce command trains the model's Config."""
import importlib.util
import os
import shlex

import pytest
import torch
import yaml

from mmdistill.utils import file_sha256

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = yaml.safe_load(open(os.path.join(
    ROOT, 'configs', 'metafile.yml')))['Models']


@pytest.mark.parametrize('entry', MODELS, ids=[m['Name'] for m in MODELS])
def test_metafile_entry(entry):
    path = os.path.join(ROOT, entry['Weights'])
    assert os.path.isfile(path)
    assert file_sha256(path) == entry['SHA256']
    assert os.path.isfile(os.path.join(ROOT, entry['Config']))
    torch.load(path, map_location='cpu', weights_only=True)
    assert entry['SHA256'] in open(os.path.join(ROOT, 'model_zoo.md')).read()


def _demo():
    spec = importlib.util.spec_from_file_location(
        'demo', os.path.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def reproduced_config(command):
    """The config a Reproduce command trains for the file named in its
    comment: tools/train.py's config, or the config of the tools/demo.py
    stage whose work dir (teacher/, stage1/, progressive/) holds the file."""
    cmd, _, out = command.partition('#')
    argv = shlex.split(cmd)
    assert argv[0] == 'python', command
    if argv[1] == 'tools/train.py':
        return argv[2]
    assert argv[1] == 'tools/demo.py', command
    demo = _demo()
    args = demo.parse_args(argv[2:])
    stage = out.strip().split('/')[0]
    if stage == 'teacher':  # trained only without --teacher-ckpt
        assert args.teacher_ckpt is None, command
    return dict(teacher=demo.TEACHER_CFG, stage1=demo.STAGE1_CFG,
                progressive=args.stage2_config)[stage]


REPRODUCIBLE = [m for m in MODELS if 'Reproduce' in m]


def test_reproduce_commands_found():
    assert len(REPRODUCIBLE) >= 5


@pytest.mark.parametrize('entry', REPRODUCIBLE,
                         ids=[m['Name'] for m in REPRODUCIBLE])
def test_reproduce_uses_config(entry):
    assert reproduced_config(entry['Reproduce']) == entry['Config']
    out = entry['Reproduce'].partition('#')[2].strip()
    if out.startswith('progressive/'):  # the N-step student of that run
        n = os.path.basename(out).split('_')[1]
        assert os.path.basename(entry['Weights']) == f'digits_student_{n}'
