"""LoRA students (``student_lora``): peft adapters on the real-format digits
teacher, sharing its frozen weights; the merge math against peft's own,
stage 1 -> stage 2 -> export, and bad settings as one-line errors."""
import pytest
import torch
from torch import nn

from mmdistill.models.lora import (check_lora_cfg, fold_lora, lora_delta,
                                   lora_layers, merged_state_dict, tie_frozen,
                                   unload_lora)
from mmdistill.utils import UserError
from mmdistill.utils.memory import distinct_bytes as count_bytes

S1 = 'configs/guided_distill/guided_distill_ddpm_digits.py'
S2 = 'configs/progressive/progressive_ddpm_digits_32to1.py'
LORA = dict(rank=4, alpha=8, target_modules=[
    'conv1', 'conv2', 'to_q', 'to_k', 'to_v', 'to_out.0', 'time_emb_proj'])


def _build(path, **kw):
    from mmdistill import register_all_modules
    from mmdistill.apis import load_config
    from mmdistill.registry import MODELS
    register_all_modules(init_default_scope=False)
    cfg = load_config(path).model.to_dict()
    cfg.update(kw)
    return MODELS.build(cfg)


def _randomize_lora(net, seed=0, embedding=True):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if 'lora_' in n or (embedding and 'guidance_emb' in n):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def _inputs(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, 8, 8, generator=g)
    t = torch.linspace(0.02, 1.0, n)
    return z, t, torch.arange(n) % 10, torch.linspace(0, 4, n)


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 5)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)


@pytest.mark.parametrize('layer', ['lin', 'conv'])
def test_merge_math_matches_peft(layer):
    """lora_delta / merged_state_dict (written from the formula W + (alpha
    / r) B A) against peft's own get_delta_weight, and the merged plain
    layer computes what the LoRA layer computes."""
    from mmdistill.models.lora import add_lora
    torch.manual_seed(0)
    toy = _Toy()
    plain = _Toy()
    plain.load_state_dict(toy.state_dict())
    add_lora(toy, dict(rank=2, alpha=3.0, target_modules=[layer],
                       dropout=0.0))
    _randomize_lora(toy)
    (m, ) = lora_layers(toy)
    a, b = m.lora_A['default'].weight, m.lora_B['default'].weight
    assert torch.allclose(lora_delta(a, b, 1.5), m.get_delta_weight(
        'default'), atol=1e-6)
    plain.load_state_dict(merged_state_dict(toy.state_dict(), 1.5))
    x = torch.randn(2, 6) if layer == 'lin' else torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        assert torch.allclose(getattr(toy, layer)(x), getattr(plain, layer)(x),
                              atol=1e-5)


def test_fresh_lora_student_is_the_teacher_and_shares_its_weights():
    """B = 0: x_hat equals the conditional teacher's exactly; only the
    adapters and the guidance embedding train; the student's and the
    EMA's base weights are the teacher's tensors (one copy: the model's
    distinct storage is the teacher plus the small trained part, where a
    full student holds three copies)."""
    torch.manual_seed(0)
    m = _build(S1, student_lora=LORA).eval()
    full = _build(S1)
    z, t, y, w = _inputs()
    with torch.no_grad():
        assert torch.equal(m.x_hat(m.net, z, t, y, torch.zeros(6)),
                           m.x_hat(m.teacher.net, z, t, y, None))
    trained = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trained and all('lora_' in n or 'guidance_emb' in n
                           for n in trained)
    assert any('guidance_emb' in n for n in trained)
    conv = m.net.model.down_blocks[0].resnets[0].conv1
    t_conv = m.teacher.net.model.down_blocks[0].resnets[0].conv1
    e_conv = m.net_ema.model.down_blocks[0].resnets[0].conv1
    assert conv.base_layer.weight is t_conv.weight
    assert e_conv.base_layer.weight is t_conv.weight
    teacher_bytes = count_bytes(m.teacher.parameters())
    small = count_bytes(p for n, p in m.named_parameters()
                        if p.requires_grad)
    got = count_bytes(m.parameters())
    assert got == teacher_bytes + 2 * small  # student's + EMA's trained part
    assert count_bytes(full.parameters()) == 3 * teacher_bytes + 2 * \
        count_bytes(full.net.guidance_emb.parameters())


def test_one_update_moves_only_the_adapters():
    """A loss step with Adam changes LoRA factors and the embedding; the
    shared base (so the teacher) stays bit-identical."""
    torch.manual_seed(0)
    m = _build(S1, student_lora=LORA, ema=None)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad],
                           lr=1e-2)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    m.loss(x, torch.arange(8) % 10)['loss'].backward()
    opt.step()
    changed = {n for n, p in m.named_parameters()
               if not torch.equal(p, before[n])}
    assert any('lora_B' in n for n in changed)
    assert all('lora_' in n or 'guidance_emb' in n for n in changed)


def test_fold_keeps_the_function_and_zeroes_b():
    torch.manual_seed(0)
    m = _build(S1, student_lora=LORA, ema=None).eval()
    _randomize_lora(m.net, embedding=False)  # the embedding stays 0
    z, t, y, w = _inputs()
    with torch.no_grad():
        ref = m.net(z, t, y, w)
        plain = unload_lora(m.net)
        assert not lora_layers(plain)
        assert torch.allclose(plain(z, t, y, w), ref, atol=1e-5)
        assert fold_lora(m.net) == len(lora_layers(m.net))
        assert torch.allclose(m.net(z, t, y, w), ref, atol=1e-5)
        assert all(float(ly.lora_B['default'].weight.abs().max()) == 0
                   for ly in lora_layers(m.net))
        # the fold went into the teacher's tensors (shared)
        assert torch.allclose(m.teacher.net(z, t, y, w), ref, atol=1e-5)


def test_tie_frozen_skips_trained_and_mismatched():
    a, b = _Toy(), _Toy()
    b.lin.weight.requires_grad_(False)
    a.lin.weight.requires_grad_(False)
    a.conv.weight.requires_grad_(False)  # frozen but src's is trainable
    assert tie_frozen(a, b) == 1
    assert a.lin.weight is b.lin.weight and a.conv.weight is not \
        b.conv.weight


@pytest.mark.parametrize('bad,match', [
    (dict(rank=0, target_modules=['conv1']), 'rank must be an integer'),
    (dict(rank=4), 'target_modules must name'),
    (dict(rank=4, alpha=-1, target_modules=['conv1']), 'alpha must be'),
    (dict(rank=4, target_modules=['conv1'], r=4), 'unknown student_lora'),
])
def test_bad_lora_settings_are_one_line(bad, match):
    with pytest.raises(UserError, match=match):
        check_lora_cfg(bad)


def test_targets_matching_nothing_is_one_line():
    with pytest.raises(UserError, match='match no nn.Linear'):
        _build(S1, student_lora=dict(rank=2, target_modules=['nope']))


def test_lora_stage1_stage2_export(tmp_path):
    """Stage 1 with a LoRA student (tools/train.py), stage 2 from its
    checkpoint (teacher = the merged stage-1 student), the halving folds
    the update into the shared weights (the saved 2-step student still
    loads and samples as trained), and the export is a plain diffusers
    folder whose network equals the merged student."""
    from _reliability import run_train_inprocess

    from mmdistill.apis import load_student
    lora_opts = [f'model.student_lora.{k}={v!r}'.replace("'", '"')
                 if isinstance(v, list) else f'model.student_lora.{k}={v}'
                 for k, v in LORA.items()]
    s1 = tmp_path / 's1'
    code, err = run_train_inprocess(
        S1, s1, 'train_cfg.max_iters=2', 'param_scheduler.0.end=2',
        'default_hooks.checkpoint.interval=2', *lora_opts)
    assert code in (0, None), err[-2000:]
    state = torch.load(s1 / 'iter_2.pth', weights_only=False)['state_dict']
    assert any('.lora_B.' in k for k in state)
    assert state['student_lora'].tolist() == [4.0, 8.0]
    st1 = load_student(str(s1 / 'iter_2.pth'))
    z, t, y, w = _inputs()
    # stage 2 from the LoRA checkpoint, itself with a LoRA student
    s2 = tmp_path / 's2'
    code, err = run_train_inprocess(
        S2, s2, f'model.teacher_ckpt={s1 / "iter_2.pth"}',
        'model.num_steps=2', 'train_cfg.max_iters=2',
        'custom_hooks.1.iters_per_stage=1', 'param_scheduler.0.end=1',
        *lora_opts)
    assert code in (0, None), err[-2000:]
    fresh = _build(S2, teacher_ckpt=str(s1 / 'iter_2.pth'), num_steps=2,
                   student_lora=LORA).eval()
    with torch.no_grad():
        ref = st1.pick_net('ema')(z, t, y, w)
        assert torch.allclose(fresh.teacher.net(z, t, y, w), ref, atol=1e-5)
        assert torch.allclose(fresh.net(z, t, y, w), ref, atol=1e-5)
    st2 = load_student(str(s2 / 'student_2step.pth'))
    s2_state = torch.load(s2 / 'student_2step.pth',
                          weights_only=True)['state_dict']
    assert any('.lora_B.' in k for k in s2_state)
    from mmdistill.models.adapters.export import export_student
    export_student(st2, str(tmp_path / 'out'), num_steps=2)
    from diffusers import UNet2DModel
    unet = UNet2DModel.from_pretrained(str(tmp_path / 'out' / 'unet'))
    plain = unload_lora(st2.pick_net('ema'))
    for a, b in zip(unet.state_dict().values(),
                    plain.model.state_dict().values()):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.allclose(plain(z, t, y, w), st2.pick_net('ema')(
            z, t, y, w), atol=1e-5)


@pytest.mark.parametrize('lora', [None, LORA])
def test_memory_model_predicts_the_measured_state(lora):
    """After one Adam step, the bytes counted from the live tensors
    (teacher, student, EMA, gradients, moments) equal the memory model's
    prediction from the parameter counts: a full student is three copies
    of the network plus gradients and two moments, a LoRA student the
    teacher plus 20 bytes per trained weight."""
    from mmdistill.utils.memory import (measured_state_bytes,
                                        predicted_state_bytes)
    torch.manual_seed(0)
    m = _build(S1, student_lora=lora)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad],
                           lr=1e-3)
    m.loss(torch.rand(4, 1, 8, 8) * 2 - 1, torch.arange(4))['loss'].backward()
    opt.step()
    n_t = sum(p.numel() for p in m.teacher.parameters())
    n_s = sum(p.numel() for p in m.parameters() if p.requires_grad)
    got = measured_state_bytes(m, opt)
    want = predicted_state_bytes(n_t, n_s)
    assert got == {k: int(v) for k, v in want.items()}
    if lora:
        assert n_s < 0.2 * n_t


def test_lora_on_the_compact_unet_student():
    """The project's CompactUNet takes LoRA students too (peft matches its
    layer names): the fresh student is the teacher at w = 0, only the
    adapters and the guidance embedding train, and the base is shared."""
    torch.manual_seed(0)
    m = _build('configs/guided_distill/guided_distill_digits.py',
               student_lora=dict(rank=4, target_modules=[
                   'conv1', 'conv2', 'emb', 'qkv', 'out'])).eval()
    from mmdistill.models.denoisers import CompactUNet
    assert isinstance(m.net, CompactUNet) and len(lora_layers(m.net)) == 26
    with torch.no_grad():  # random teacher weights: perturb the zero layers
        for p in m.teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    z, t, y, _ = _inputs()
    with torch.no_grad():
        assert torch.equal(m.x_hat(m.net, z, t, y, torch.zeros(6)),
                           m.x_hat(m.teacher.net, z, t, y, None))
    trained = [n for n, p in m.named_parameters() if p.requires_grad]
    assert all('lora_' in n or 'guidance_emb' in n for n in trained)
