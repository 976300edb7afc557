"""An optimizer wrapper that survives non-finite losses.

A NaN or infinite loss (or gradient) would poison every weight in one step.
:class:`SafeOptimWrapper` checks each update first:

    finite = isfinite(loss) and all(isfinite(g) for g in grads)

If the check fails the step is skipped (gradients are zeroed, weights and
optimizer state are untouched), the skip is counted and logged through the
message hub as ``train/nonfinite_skips`` (total) and
``train/nonfinite_streak`` (consecutive), and after ``max_consecutive``
non-finite steps in a row training stops with a one-line
:class:`~mmdistill.utils.UserError`. Weights never become non-finite, so
every checkpoint written before the stop is a good one.

Finite but diverging training is stopped too, before a checkpoint can keep
its weights (``divergence``, on by default):

    loss > factor * median(last ``window`` losses)            (spike)
    ||g|| > factor * median(last ``window`` gradient norms)   (spike)
    ||theta_after|| > max_weight_growth * ||theta_before||    (blow-up)

A spike stops the run before the step is applied; a blow-up stops it right
after the step that caused it, inside the same iteration, so the checkpoint
hook never sees the diverged weights. The medians need ``warmup`` finite
steps first (and again after :meth:`reset_divergence_history`, which the
progressive-distillation hook calls at every halving, as the new stage's
losses are not comparable with the last one's); the growth check needs no
history (a learning rate far too large blows the weights up in the very
first step) and skips weights whose RMS is below 1e-3 (zero-initialised
layers grow by large factors).

In a multi-process run the decisions are all-reduced, so every rank skips
(or stops at) the same steps and the replicas stay identical.

:class:`SafeAmpOptimWrapper` is the same guard around mmengine's
``AmpOptimWrapper`` (what ``tools/train.py --amp`` selects). There only the
loss is checked by default: overflowing (scaled) gradients are the
GradScaler's to handle, which skips that step itself and lowers its scale.
"""

import math
from collections import deque
from statistics import median

import torch
import torch.distributed as torch_dist
from mmengine.logging import MessageHub
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmdistill.models.sharding import global_norm, shard_optimizer_state
from mmdistill.registry import OPTIM_WRAPPERS
from mmdistill.utils import UserError


class NonFiniteGuardMixin:
    """Skip-count-stop guard for an mmengine optimizer wrapper (put it
    before the wrapper class in the bases).

    Args:
        max_consecutive (int): stop with an error after this many
            consecutive non-finite steps (default 5).
        check_grads (bool): also require finite gradients (and watch their
            norm for spikes).
        divergence (dict | None): the divergence check, None to turn it
            off. Keys: ``factor`` (100: a loss or gradient norm this many
            times its running median is a divergence), ``window`` (100
            steps of history), ``warmup`` (10 steps before the medians are
            used), ``max_weight_growth`` (10: one step may not multiply the
            weight norm by more).
        **kwargs: the wrapper's own arguments.
    """

    DIVERGENCE = dict(factor=100.0, window=100, warmup=10,
                      max_weight_growth=10.0)

    def __init__(self, *args, max_consecutive=5, check_grads=True,
                 divergence=DIVERGENCE, **kwargs):
        super().__init__(*args, **kwargs)
        if int(max_consecutive) < 1:
            raise ValueError(f'{type(self).__name__}.max_consecutive must '
                             f'be >= 1, got {max_consecutive}')
        self.max_consecutive = int(max_consecutive)
        self.check_grads = check_grads
        self.nonfinite_skips = 0
        self.nonfinite_streak = 0
        self._loss_finite = True
        self._loss_sum = 0.0
        self.divergence = None
        if divergence is not None:
            unknown = set(divergence) - set(self.DIVERGENCE)
            if unknown:
                raise ValueError(f'unknown divergence keys {sorted(unknown)}'
                                 f'; use {sorted(self.DIVERGENCE)}')
            d = dict(self.DIVERGENCE, **divergence)
            if d['factor'] <= 1 or d['max_weight_growth'] <= 1 or \
                    int(d['window']) < 1 or int(d['warmup']) < 1:
                raise ValueError('divergence needs factor > 1, '
                                 'max_weight_growth > 1, window >= 1 and '
                                 f'warmup >= 1, got {divergence}')
            self.divergence = d
        window = int(self.divergence['window']) if self.divergence else 1
        self._history = dict(loss=deque(maxlen=window),
                             grad_norm=deque(maxlen=window))

    def _params(self):
        for group in self.optimizer.param_groups:
            yield from group['params']

    def _grad_norm(self):
        """The total gradient norm (over all shards of a sharded model);
        non-finite if any gradient is."""
        return global_norm(p.grad for p in self._params()
                           if p.grad is not None)

    def _weight_norm(self):
        """(total norm, element count) of the optimised weights."""
        ps = [p.detach() for p in self._params()]
        if not ps:
            return 0.0, 0
        return global_norm(ps), sum(p.numel() for p in ps)

    def _agree(self, *flags):
        """Every rank takes the same decisions (max over ranks of each
        flag)."""
        if torch_dist.is_available() and torch_dist.is_initialized() and \
                torch_dist.get_world_size() > 1:
            t = torch.tensor([1.0 if f else 0.0 for f in flags])
            if torch_dist.get_backend() == 'nccl':
                t = t.cuda()
            torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
            flags = tuple(bool(v > 0.5) for v in t.tolist())
        return flags if len(flags) > 1 else flags[0]

    def _spike(self, name, value):
        """``value`` is ``factor`` times above the running median of
        ``name``; returns (spike, median)."""
        hist = self._history[name]
        if len(hist) < int(self.divergence['warmup']):
            return False, None
        med = median(hist)
        return med > 0 and value > self.divergence['factor'] * med, med

    def _stop_diverged(self, what):
        hub = MessageHub.get_current_instance()
        it = hub.get_info('iter')
        at = '' if it is None else f' at iteration {int(it) + 1}'
        raise UserError(
            f'training diverged{at}: {what}; stopped before any checkpoint '
            'keeps these weights: lower the learning rate, enable clip_grad, '
            'or resume from an earlier checkpoint (optim_wrapper.divergence'
            '=None turns the check off)')

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None):
        """Backward; then step only if the loss (of every accumulated
        micro-batch) and all gradients are finite, and stop if they show
        divergence (see the module docstring)."""
        loss = self.scale_loss(loss)
        finite_now = bool(torch.isfinite(loss.detach()).all())
        self._loss_finite &= finite_now
        if finite_now:
            self._loss_sum += float(loss.detach().float().sum())
        self.backward(loss)
        if not self.should_update():
            return
        loss_value, self._loss_sum = self._loss_sum, 0.0
        grad_norm = self._grad_norm() if self.check_grads else 0.0
        bad = not (self._loss_finite and math.isfinite(grad_norm))
        self._loss_finite = True
        spike, what = False, ''
        if not bad and self.divergence is not None:
            spike_l, med_l = self._spike('loss', loss_value)
            spike_g, med_g = self._spike('grad_norm', grad_norm) \
                if self.check_grads else (False, None)
            spike = spike_l or spike_g
            what = (f'the loss {loss_value:.3g} is {loss_value / med_l:.0f}x '
                    f'its running median {med_l:.3g}' if spike_l else
                    f'the gradient norm {grad_norm:.3g} is '
                    f'{grad_norm / med_g:.0f}x its running median '
                    f'{med_g:.3g}' if spike_g else '')
        bad, spike = self._agree(bad, spike)
        if spike:
            self.zero_grad(**(zero_kwargs or {}))
            self._stop_diverged(what or 'another process saw a spike')
        if not bad:
            self.nonfinite_streak = 0
            before = self._weight_norm() if self.divergence else None
            self.step(**(step_kwargs or {}))
            if self.divergence is not None:
                self._history['loss'].append(loss_value)
                if self.check_grads:
                    self._history['grad_norm'].append(grad_norm)
                self._check_growth(before)
        else:
            self.nonfinite_skips += 1
            self.nonfinite_streak += 1
        self.zero_grad(**(zero_kwargs or {}))
        hub = MessageHub.get_current_instance()
        hub.update_scalar('train/nonfinite_skips', self.nonfinite_skips)
        hub.update_scalar('train/nonfinite_streak', self.nonfinite_streak)
        if self.nonfinite_streak >= self.max_consecutive:
            raise UserError(
                f'the loss or its gradients were not finite (NaN/inf) for '
                f'{self.nonfinite_streak} consecutive steps '
                f'({self.nonfinite_skips} skipped in total); training stopped '
                'and the last checkpoint is untouched: lower the learning '
                'rate, enable clip_grad, check the data, or resume from an '
                'earlier checkpoint')

    def reset_divergence_history(self):
        """Forget the loss and gradient-norm history (a new training phase
        whose losses are not comparable with the old ones, e.g. a
        progressive-distillation halving); the medians wait for ``warmup``
        new steps."""
        for hist in self._history.values():
            hist.clear()

    def _check_growth(self, before):
        """Stop if the step just taken multiplied the weight norm by more
        than ``max_weight_growth`` (weights of RMS >= 1e-3 only)."""
        (n0, count), (n1, _) = before, self._weight_norm()
        limit = self.divergence['max_weight_growth']
        grew = count > 0 and n0 >= 1e-3 * math.sqrt(count) and (
            not math.isfinite(n1) or n1 > limit * n0)
        if self._agree(grew):
            self._stop_diverged(
                f'one update multiplied the weight norm by '
                f'{n1 / n0:.3g} ({n0:.3g} -> {n1:.3g}; limit {limit:g}x)'
                if grew else 'the weights blew up in another process')

    def state_dict(self):
        state = super().state_dict()
        state['nonfinite_skips'] = self.nonfinite_skips
        state['divergence_history'] = {k: list(v)
                                       for k, v in self._history.items()}
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        self.nonfinite_skips = int(state_dict.pop('nonfinite_skips', 0))
        for k, v in state_dict.pop('divergence_history', {}).items():
            if k in self._history:
                self._history[k].clear()
                self._history[k].extend(float(x) for x in v)
        # a gathered checkpoint's moments onto the shards of a sharded model
        super().load_state_dict(shard_optimizer_state(self.optimizer,
                                                      state_dict))


@OPTIM_WRAPPERS.register_module()
class SafeOptimWrapper(NonFiniteGuardMixin, OptimWrapper):
    """``OptimWrapper`` that skips non-finite updates.

    Args:
        max_consecutive (int): stop with an error after this many
            consecutive non-finite steps (default 5).
        check_grads (bool): also require finite gradients (default True).
        divergence (dict | None): the divergence check (see
            :class:`NonFiniteGuardMixin`).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """


@OPTIM_WRAPPERS.register_module()
class SafeAmpOptimWrapper(NonFiniteGuardMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` (autocast + GradScaler) that skips updates whose
    loss is not finite and stops after ``max_consecutive`` of them.

    Args:
        max_consecutive (int): as for :class:`SafeOptimWrapper`.
        check_grads (bool): also require finite (scaled) gradients; default
            False, as the GradScaler skips overflowing steps itself and
            needs to see them to lower its scale.
        **kwargs: ``AmpOptimWrapper`` arguments (``dtype``, ``loss_scale``,
            ``optimizer``, ``clip_grad``, ...).
    """

    def __init__(self, *args, max_consecutive=5, check_grads=False,
                 divergence=NonFiniteGuardMixin.DIVERGENCE, **kwargs):
        super().__init__(*args, max_consecutive=max_consecutive,
                         check_grads=check_grads, divergence=divergence,
                         **kwargs)
