"""MGD3 evaluation: classifiers and the diversity/representativeness
metrics."""
import math

import pytest
import torch

from mmdistill.synthesis.evaluate import (diversity_representativeness,
                                          train_and_test)


def test_diversity_and_representativeness_known_values():
    # class 0: samples at 0 and 2 (D = 4, every pixel equal)
    x = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 2.0)])
    y = torch.tensor([0, 0])
    real = torch.stack([torch.full((1, 2, 2), v) for v in (0.0, 1.0, 5.0)])
    yr = torch.zeros(3, dtype=torch.long)
    div, rep = diversity_representativeness(x, y, real, yr, k=2)
    # RMS distance between the two samples = 2
    assert div == pytest.approx(2.0)
    # sample 0: nearest reals 0, 1 -> 0.5; sample 2: nearest 1, 0 -> 1.5
    assert rep == pytest.approx((0.5 + 1.5) / 2)
    div1, _ = diversity_representativeness(x[:1], y[:1], real, yr)
    assert math.isnan(div1)


@pytest.mark.parametrize('net', [dict(type='ConvNet', width=16, depth=2),
                                 dict(type='ResNetAP', widths=(8, 16))])
def test_classifiers_learn_a_separable_task(net):
    g = torch.Generator().manual_seed(0)
    # class = which image half is bright; chance is 50 %
    def make(n):
        y = torch.randint(0, 2, (n, ), generator=g)
        x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
        x[y == 0, :, :4] += 1.0
        x[y == 1, :, 4:] += 1.0
        return x, y
    x, y = make(64)
    xt, yt = make(200)
    acc = train_and_test(net, x, y, xt, yt, 2, seed=0, iterations=60,
                         lr=0.05)
    assert acc > 90
    # the seed fixes the run
    assert acc == train_and_test(net, x, y, xt, yt, 2, seed=0,
                                 iterations=60, lr=0.05)


def test_feature_space_diversity_and_representativeness(tmp_path):
    """With ``feature_extractor`` the two metrics are also reported on the
    extractor's features, computed here directly from the definitions."""
    from mmengine.config import Config

    from mmdistill.datasets import load_digits_split
    from mmdistill.evaluation import build_extractor
    from mmdistill.synthesis.evaluate import evaluate_dataset, load_synthetic
    from mmdistill.synthesis.pipeline import Synthesizer
    real = dict(type='DigitsDataset', split='train')
    cfg = Config(dict(seed=0, real_data=real,
                      synthesis=dict(source='real_random', ipc=3)))
    Synthesizer(cfg, str(tmp_path), progress=False).run()
    res = evaluate_dataset(
        str(tmp_path), dict(test_data=dict(type='DigitsDataset',
                                           split='test'),
                            classifiers=[], num_neighbours=5,
                            feature_extractor=dict(type='classifier')),
        real, log=lambda *a: None)
    x, y = load_synthetic(str(tmp_path), 8, 1)
    xr, yr = load_digits_split('train')
    ext = build_extractor(dict(type='classifier'))
    f = ext.extract(x, probs=False)['features'].double()
    fr = ext.extract(torch.as_tensor(xr).float(), probs=False)[
        'features'].double()
    yr = torch.as_tensor(yr)
    div, rep = [], []
    for i in range(len(x)):
        same = [j for j in range(len(x)) if y[j] == y[i] and j != i]
        div.append(min(float((f[i] - f[j]).norm()) for j in same))
        d = (fr[yr == y[i]] - f[i]).norm(dim=1).sort().values[:5]
        rep.append(float(d.mean()))
    scale = math.sqrt(f.shape[1])
    assert res['diversity_feat'] == pytest.approx(
        sum(div) / len(div) / scale, rel=1e-5)
    assert res['representativeness_feat'] == pytest.approx(
        sum(rep) / len(rep) / scale, rel=1e-5)
    # the pixel-space metrics are still there and differ
    assert res['diversity'] != pytest.approx(res['diversity_feat'])
