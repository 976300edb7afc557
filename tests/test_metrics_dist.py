"""FID / IS / accuracy from 2 processes (gloo, CPU) equal 1 process."""
import json
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLS_CKPT = osp.join(ROOT, 'checkpoints', 'digits_classifier.pth')


def _evaluate():
    import mmdistill  # noqa: F401
    from mmdistill.datasets import load_digits_split
    from mmdistill.evaluation import evaluate_generator
    from mmdistill.registry import MODELS
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='CFGDiffusion',
        denoiser=dict(type='CompactUNet', in_channels=1, base_channels=8,
                      channel_mult=(1, 2), num_res_blocks=1,
                      num_classes=10),
        num_classes=10, image_shape=(1, 8, 8))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x, _ = load_digits_split('test')
    # 7 batches of 7 (the last one short): uneven shares on 2 ranks
    return evaluate_generator(
        model, dict(type='classifier', checkpoint=CLS_CKPT),
        torch.as_tensor(x), n=47, batch_size=7, progress=False,
        sweep=[dict(steps=2, guidance=0.0), dict(steps=2, guidance=2.0,
                                                 sampler='ddpm')])


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    from mmdistill.engine import init_cpu_dist
    init_cpu_dist(timeout_s=120)
    res = _evaluate()
    with open(f'{out}.{rank}', 'w') as f:
        json.dump(res, f)
    torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    single = _evaluate()
    out = str(tmp_path / 'res')
    mp.start_processes(_worker, args=(2, _free_port(), out), nprocs=2,
                       join=True, start_method='fork')
    for rank in range(2):
        with open(f'{out}.{rank}') as f:
            multi = json.load(f)
        assert set(multi) == set(single)
        # identical batches on any process count -> identical numbers
        for k in single:
            assert multi[k] == pytest.approx(single[k], rel=1e-12,
                                             abs=1e-12), k
    assert 'FID-47/2step-w2-ddpm' in single
