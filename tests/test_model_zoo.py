"""The model zoo: model-index.yml imports one metafile per algorithm folder
(configs/<algorithm>/metafile.yml, with a README.md beside it); every
checkpoint it names exists, matches its sha256, loads weights-only, and
model_zoo.md quotes the same hashes and the same metrics; each Reproduce
command trains the model's Config; the results rows of the algorithm
READMEs are model_zoo.md's."""
import importlib.util
import os
import re
import shlex

import pytest
import torch
import yaml

from mmdistill.utils import file_sha256

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INDEX = yaml.safe_load(open(os.path.join(ROOT, 'model-index.yml')))
METAFILES = INDEX['Import']
ALL_MODELS = [m for f in METAFILES for m in yaml.safe_load(
    open(os.path.join(ROOT, f)))['Models']]
#: the entries with a shipped checkpoint
MODELS = [m for m in ALL_MODELS if 'Weights' in m]
ZOO = open(os.path.join(ROOT, 'model_zoo.md'), encoding='utf-8').read()


def test_index_covers_every_algorithm_folder():
    folders = sorted(d for d in os.listdir(os.path.join(ROOT, 'configs'))
                     if d != '_base_' and
                     os.path.isdir(os.path.join(ROOT, 'configs', d)))
    assert sorted(f.split('/')[1] for f in METAFILES) == folders
    assert not os.path.exists(os.path.join(ROOT, 'configs', 'metafile.yml'))
    for f in METAFILES:
        folder = os.path.dirname(os.path.join(ROOT, f))
        assert os.path.isfile(os.path.join(folder, 'README.md')), folder
        meta = yaml.safe_load(open(os.path.join(ROOT, f)))
        names = {c['Name'] for c in meta['Collections']}
        for m in meta['Models']:
            assert m['In Collection'] in names, (f, m['Name'])
            assert m['Config'].startswith(os.path.dirname(f) + '/'), m
            assert os.path.isfile(os.path.join(ROOT, m['Config'])), m
    names = [m['Name'] for m in ALL_MODELS]
    assert len(names) == len(set(names))


def test_every_shipped_checkpoint_is_indexed():
    folder = os.path.join(ROOT, 'checkpoints')
    shipped = sorted('checkpoints/' + f for f in os.listdir(folder)
                     if f.endswith('.pth') or os.path.isfile(
                         os.path.join(folder, f, 'model_index.json')))
    assert sorted(m['Weights'] for m in MODELS) == shipped


def zoo_rows(table='### Main table'):
    """The rows of a model_zoo.md table: (model, steps, w) -> cells."""
    main = ZOO.split(table)[1].split('\n### ')[0].split('\n## ')[0]
    rows = {}
    for line in main.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('| ') and cells[0] in ('teacher', 'student'):
            rows[(cells[0], int(cells[1]), float(cells[3]))] = cells
    return rows


def metric_values(entry):
    """(model_zoo.md cell, metafile value) for each metric of an entry."""
    rows = zoo_rows(
        '### Real-format teacher' if entry['Name'].startswith('ddpm') else
        '### Latent DiT teacher' if entry['Name'].startswith('dit') else
        '### Main table')
    pairs = []
    for result in entry.get('Results', []):
        metrics = dict(result['Metrics'])
        if result['Task'] == 'Classification':
            acc = metrics['Top 1 Accuracy']
            found = re.search(r'\(([\d.]+) % on the 360 test images\)', ZOO)
            pairs.append((found.group(1), acc))
            continue
        steps = metrics.pop('Sampling steps')
        model = 'teacher' if 'teacher' in entry['Name'] else 'student'
        for name, value in metrics.items():
            m = re.fullmatch(r'FID to (real|teacher-256) \(w=([\d.]+)\)',
                             name)
            assert m, name
            row = rows[(model, steps, float(m.group(2)))]
            pairs.append((row[4] if m.group(1) == 'real' else row[5], value))
    return pairs


@pytest.mark.parametrize('entry', MODELS, ids=[m['Name'] for m in MODELS])
def test_metafile_metrics_are_model_zoo_numbers(entry):
    pairs = metric_values(entry)
    assert pairs, f'{entry["Name"]} has no Results'
    for cell, value in pairs:
        assert float(cell) == float(value), (entry['Name'], cell, value)


README_ROW = re.compile(r'^\| (teacher|student) \|')


@pytest.mark.parametrize('folder', ['teacher', 'progressive'])
def test_readme_results_rows_are_model_zoo_rows(folder):
    readme = open(os.path.join(ROOT, 'configs', folder, 'README.md'),
                  encoding='utf-8').read()
    rows = [ln for ln in readme.splitlines() if README_ROW.match(ln)]
    assert len(rows) >= 8
    zoo_lines = set(ZOO.splitlines())
    for row in rows:
        assert row in zoo_lines, row


@pytest.mark.parametrize('entry', MODELS, ids=[m['Name'] for m in MODELS])
def test_metafile_entry(entry):
    path = os.path.join(ROOT, entry['Weights'])
    assert os.path.isfile(os.path.join(ROOT, entry['Config']))
    if os.path.isdir(path):  # a diffusers folder: its weights file
        from diffusers import DiTTransformer2DModel, UNet2DModel
        sub, cls = (('transformer', DiTTransformer2DModel)
                    if os.path.isdir(os.path.join(path, 'transformer'))
                    else ('unet', UNet2DModel))
        cls.from_pretrained(path, subfolder=sub)
        path = os.path.join(path, sub, 'diffusion_pytorch_model.safetensors')
    else:
        torch.load(path, map_location='cpu', weights_only=True)
    assert file_sha256(path) == entry['SHA256']
    assert entry['SHA256'] in ZOO


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
