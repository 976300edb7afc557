"""The model zoo: every checkpoint in configs/metafile.yml exists, matches
its sha256, loads weights-only, and model_zoo.md quotes the same hashes."""
import os

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
