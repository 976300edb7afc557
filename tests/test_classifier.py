"""The digits classifier: loss, training, committed weights."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

import mmdistill  # noqa: F401
from mmdistill.datasets import load_digits_split
from mmdistill.registry import MODELS
from mmdistill.utils import load_state_dict, sub_state_dict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NET = dict(type='DigitsCNN', in_channels=1, num_classes=10, width=32,
           feat_dim=128)


def test_loss_is_cross_entropy_and_shapes():
    model = MODELS.build(dict(type='ImageClassifier', net=NET))
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 4, 9])
    data = model.data_preprocessor(dict(inputs=list(x), data_samples=list(
        y.tolist())))
    model.eval()  # no dropout: compare with an independent computation
    losses = model(**data, mode='loss')
    logits = model.net(x)
    manual = -torch.log_softmax(logits, 1)[torch.arange(6), y].mean()
    torch.testing.assert_close(losses['loss'], manual)
    assert model(x, mode='predict').tolist() == logits.argmax(1).tolist()
    assert model.net.features(x).shape == (6, 128)
    torch.testing.assert_close(model.net.head(model.net.features(x)),
                               logits)


def test_short_training_learns_digits():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ImageClassifier', net=NET))
    xtr, ytr = (torch.as_tensor(a) for a in load_digits_split('train'))
    xte, yte = (torch.as_tensor(a) for a in load_digits_split('test'))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    before = model.accuracy(xte.float(), yte.long())
    model.train()
    for _ in range(150):
        idx = torch.randint(len(ytr), (128, ), generator=g)
        loss = F.cross_entropy(model.net(xtr[idx].float()), ytr[idx].long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.accuracy(xte.float(), yte.long())
    assert before < 0.3 < 0.9 < after


def test_committed_checkpoint_loads_safely_and_is_accurate():
    path = osp.join(ROOT, 'checkpoints', 'digits_classifier.pth')
    assert osp.getsize(path) < 1 << 20
    state = load_state_dict(path)  # weights_only=True
    prefix, sub = sub_state_dict(state, ['net.'])
    assert prefix == 'net.'
    net = MODELS.build(NET).eval()
    net.load_state_dict(sub)
    x, y = load_digits_split('test')
    with torch.no_grad():
        acc = (net(torch.as_tensor(x).float()).argmax(1) ==
               torch.as_tensor(y)).float().mean()
    assert acc > 0.95


@pytest.mark.parametrize('size', [8, 16])
def test_cnn_any_image_size(size):
    net = MODELS.build(NET)
    assert net(torch.zeros(2, 1, size, size)).shape == (2, 10)
