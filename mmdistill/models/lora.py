"""LoRA students (Hu et al., 2022) through ``peft``.

A LoRA student keeps the teacher's weights W frozen and trains a low-rank
update per targeted ``nn.Linear`` / ``nn.Conv2d``:

    W' = W + (alpha / r) B A,   A in R^{r x k},  B in R^{d x r},  B_0 = 0,

so a fresh student equals its teacher exactly (B = 0). With a guidance
embedding (Meng et al.) only the LoRA factors and the embedding train.

Memory: the student's frozen base W is *the teacher's tensor* (one copy in
memory, :func:`tie_frozen`), and so is the EMA's; the optimizer holds
moments for the adapters and the embedding only.

Stage 2 (progressive distillation) starts from a merged stage-1 student
(:func:`merged_state_dict`: W + (alpha / r) B A per layer) and, at each
halving, folds the student's update into the shared base (:func:`fold_lora`):
teacher <- student then costs no copy, and the student restarts at B = 0.
"""
import copy
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from mmdistill.utils import UserError

#: names of guidance-embedding parameters (trained, never shared, never
#: LoRA targets): the hooked embedding of the diffusers adapters and the
#: CompactUNet, the native ``cond_proj`` of a text UNet.
GUIDANCE_PARAM_KEYS = ('guidance_emb.', 'time_embedding.cond_proj.')

#: LoRA settings of a checkpoint's student, as a buffer [r, alpha].
LORA_BUFFER = 'student_lora'


def check_lora_cfg(cfg: Optional[dict]) -> Optional[dict]:
    """``student_lora=dict(rank=..., alpha=..., target_modules=[...],
    dropout=0.0)`` validated (None: a full student).

    Raises:
        UserError: a missing/invalid field or an unknown key.
    """
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise UserError('student_lora must be a dict(rank=..., alpha=..., '
                        'target_modules=[...]) or None')
    cfg = dict(cfg)
    unknown = set(cfg) - {'rank', 'alpha', 'target_modules', 'dropout'}
    if unknown:
        raise UserError(f'unknown student_lora keys {sorted(unknown)}; use '
                        'rank, alpha, target_modules, dropout')
    rank = cfg.get('rank')
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise UserError(f'student_lora.rank must be an integer >= 1, got '
                        f'{rank!r}')
    alpha = float(cfg.get('alpha', rank))
    if not alpha > 0:
        raise UserError(f'student_lora.alpha must be > 0, got {alpha!r}')
    targets = cfg.get('target_modules')
    if isinstance(targets, str):
        targets = [targets]
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise UserError('student_lora.target_modules must name the layers '
                        "to adapt, e.g. ['conv1', 'conv2', 'to_q', 'to_k', "
                        "'to_v', 'to_out.0']")
    dropout = float(cfg.get('dropout', 0.0))
    if not 0 <= dropout < 1:
        raise UserError(f'student_lora.dropout must be in [0, 1), got '
                        f'{dropout!r}')
    return dict(rank=rank, alpha=alpha, target_modules=list(targets),
                dropout=dropout)


def is_guidance_param(name: str) -> bool:
    """Whether a parameter name belongs to the guidance embedding."""
    return any(f'.{k}' in f'.{name}' for k in GUIDANCE_PARAM_KEYS)


def tie_frozen(dst: nn.Module, src: nn.Module) -> int:
    """Make every frozen parameter of ``dst`` *be* the frozen parameter of
    ``src`` with the same name (peft's ``X.base_layer.weight`` is ``X.weight``)
    and shape, so the two modules hold one copy of those weights (an
    in-place change of one is a change of the other; ``dst``'s dtype
    becomes ``src``'s: a half-precision teacher gives a half-precision
    student base). Trainable parameters (LoRA factors, the guidance
    embedding) stay ``dst``'s own.

    Returns:
        int: the number of parameters tied.
    """
    pool = {n: p for n, p in src.named_parameters() if not p.requires_grad}
    tied = 0
    for mod_name, mod in dst.named_modules():
        for name, p in list(mod._parameters.items()):
            full = f'{mod_name}.{name}' if mod_name else name
            q = pool.get(full.replace('.base_layer.', '.'))
            if p is None or p.requires_grad or q is None or q is p or \
                    q.shape != p.shape:
                continue
            mod._parameters[name] = q
            tied += 1
    return tied


def unload_lora(net: nn.Module) -> nn.Module:
    """A plain copy of a LoRA network: its updates folded into the weights
    (:func:`fold_lora`) and every LoRA layer replaced by its base layer, so
    the copy has the original architecture and state-dict keys (what
    ``save_pretrained`` of the wrapped diffusers model needs)."""
    net = copy.deepcopy(net)
    fold_lora(net)
    layers = {id(m) for m in lora_layers(net)}
    for name, m in list(net.named_modules()):
        if id(m) in layers and name:
            parent, _, child = name.rpartition('.')
            setattr(net.get_submodule(parent) if parent else net, child,
                    m.get_base_layer())
    return net


def add_lora(net: nn.Module, cfg: dict) -> nn.Module:
    """Inject zero-initialised LoRA adapters into ``net`` in place (peft's
    ``inject_adapter_in_model``) and leave only the adapters and the
    guidance embedding trainable.

    Raises:
        UserError: peft is missing or no module matches
            ``target_modules``.
    """
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as e:
        raise UserError('student_lora needs peft; pip install peft') from e
    names = [n for n, _ in net.named_modules()]
    exclude = [k for k in ('guidance_emb', 'cond_proj')
               if any(f'.{n}.'.find(f'.{k}.') >= 0 for n in names)]
    config = LoraConfig(r=cfg['rank'], lora_alpha=cfg['alpha'],
                        lora_dropout=cfg['dropout'],
                        target_modules=cfg['target_modules'],
                        exclude_modules=exclude or None,
                        init_lora_weights=True)
    try:
        inject_adapter_in_model(config, net)
    except ValueError as e:
        raise UserError(
            f'student_lora.target_modules {cfg["target_modules"]} match no '
            'nn.Linear / nn.Conv2d of the student; name layers it has (see '
            '`print(model.net)`), e.g. conv1, to_q') from e
    for name, p in net.named_parameters():
        p.requires_grad_('lora_' in name or is_guidance_param(name))
    return net


def lora_layers(net: nn.Module) -> List[nn.Module]:
    """The peft LoRA layers of ``net``."""
    from peft.tuners.lora import LoraLayer
    return [m for m in net.modules() if isinstance(m, LoraLayer)]


@torch.no_grad()
def fold_lora(net: nn.Module) -> int:
    """W <- W + (alpha / r) B A for every LoRA layer of ``net`` (peft's
    ``get_delta_weight``), then B <- 0: the network computes the same
    function, with its update moved into the (shared) base weights.

    Returns:
        int: the number of layers folded.
    """
    layers = lora_layers(net)
    for m in layers:
        for name in list(m.lora_A.keys()):
            w = m.get_base_layer().weight
            w += m.get_delta_weight(name).to(w.dtype)
            nn.init.zeros_(m.lora_B[name].weight)
    return len(layers)


def lora_delta(a: Tensor, b: Tensor, scaling: float) -> Tensor:
    """The weight update (alpha / r) B A of one layer from its factors.

    Linear: A (r, k), B (d, r) -> (d, k). Conv2d: A (r, c, kh, kw), B (o, r,
    1, 1) (peft's layout) -> (o, c, kh, kw), the composition of the two
    convolutions.
    """
    if a.dim() == 2:
        return scaling * (b @ a)
    r = a.shape[0]
    return scaling * (b.reshape(b.shape[0], r) @ a.reshape(r, -1)).reshape(
        b.shape[0], *a.shape[1:])


def is_lora_state(state: Dict[str, Tensor]) -> bool:
    """Whether a network state dict is in peft's LoRA form."""
    return any('.lora_A.' in k for k in state)


def plain_keys(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A LoRA network state dict with the factors dropped and
    ``X.base_layer.*`` named ``X.*``: the plain network's state when the
    update has been folded into the base (B = 0), as after
    :func:`fold_lora`."""
    return {k.replace('.base_layer.', '.'): v for k, v in state.items()
            if not any(f in k for f in ('.lora_A.', '.lora_B.',
                                        '.lora_dropout.'))}


def fold_lora_state(state: Dict[str, Tensor],
                    scaling: float) -> Dict[str, Tensor]:
    """:func:`fold_lora` on a LoRA network state dict:
    ``X.base_layer.weight <- W + scaling B A``, ``B <- 0`` (the same network
    function; the form in which a LoRA student shares its weights with its
    teacher)."""
    merged = merged_state_dict(state, scaling)
    out = dict(state)
    for k in state:
        if '.lora_B.' in k:
            out[k] = torch.zeros_like(state[k])
        elif '.base_layer.' in k:
            out[k] = merged[k.replace('.base_layer.', '.')]
    return out


def merged_state_dict(state: Dict[str, Tensor],
                      scaling: float) -> Dict[str, Tensor]:
    """A LoRA network state dict -> the plain network's: for every layer
    ``X``, ``X.weight = X.base_layer.weight + scaling * B A`` (and
    ``X.bias = X.base_layer.bias``); the factors are dropped.

    Args:
        state: keys ``X.base_layer.*``, ``X.lora_A.<name>.weight``,
            ``X.lora_B.<name>.weight`` besides the plain ones.
        scaling: alpha / r of the adapters.
    """
    out = plain_keys(state)
    for k, a in state.items():
        if '.lora_A.' not in k:
            continue
        layer, rest = k.split('.lora_A.')
        b = state[f'{layer}.lora_B.{rest}']
        w = out[f'{layer}.weight']
        out[f'{layer}.weight'] = w + lora_delta(a.float(), b.float(),
                                                scaling).to(w.dtype)
    return out


def lora_record(cfg: Optional[dict]) -> Tensor:
    """The ``student_lora`` buffer: [r, alpha] ([0, 0] for a full
    student)."""
    if cfg is None:
        return torch.zeros(2)
    return torch.tensor([float(cfg['rank']), float(cfg['alpha'])])


def recorded_scaling(state: Dict[str, Tensor],
                     path: str = 'the checkpoint') -> float:
    """alpha / r from the ``student_lora`` buffer of a state dict that holds
    LoRA weights.

    Raises:
        UserError: no record (or a full student's [0, 0]).
    """
    record = state.get(LORA_BUFFER)
    if record is None or float(record[0]) == 0:
        raise UserError(f'{path} holds LoRA weights but no {LORA_BUFFER} '
                        'record (rank, alpha); re-save it with mmdistill')
    return float(record[1]) / float(record[0])


def plain_net_state(state: Dict[str, Tensor], prefix: str,
                    path: str = 'the checkpoint') -> Dict[str, Tensor]:
    """The ``prefix`` network of a distiller checkpoint as a plain network
    state dict: merged when it holds LoRA adapters (their alpha / r read from
    the checkpoint's ``student_lora`` buffer).

    Raises:
        UserError: LoRA weights without the record.
    """
    sub = {k[len(prefix):]: v for k, v in state.items()
           if k.startswith(prefix)}
    if not is_lora_state(sub):
        return sub
    return merged_state_dict(sub, recorded_scaling(state, path))
