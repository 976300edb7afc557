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
