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

In a multi-process run the decision is all-reduced, so every rank skips the
same steps and the replicas stay identical.

:class:`SafeAmpOptimWrapper` is the same guard around mmengine's
``AmpOptimWrapper`` (what ``tools/train.py --amp`` selects). There only the
loss is checked by default: overflowing (scaled) gradients are the
GradScaler's to handle, which skips that step itself and lowers its scale.
"""

import torch
import torch.distributed as torch_dist
from mmengine.logging import MessageHub
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmdistill.registry import OPTIM_WRAPPERS
from mmdistill.utils import UserError


class NonFiniteGuardMixin:
    """Skip-count-stop guard for an mmengine optimizer wrapper (put it
    before the wrapper class in the bases).

    Args:
        max_consecutive (int): stop with an error after this many
            consecutive non-finite steps (default 5).
        check_grads (bool): also require finite gradients.
        **kwargs: the wrapper's own arguments.
    """

    def __init__(self, *args, max_consecutive=5, check_grads=True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if int(max_consecutive) < 1:
            raise ValueError(f'{type(self).__name__}.max_consecutive must '
                             f'be >= 1, got {max_consecutive}')
        self.max_consecutive = int(max_consecutive)
        self.check_grads = check_grads
        self.nonfinite_skips = 0
        self.nonfinite_streak = 0
        self._loss_finite = True

    def _grads_finite(self):
        for group in self.optimizer.param_groups:
            for p in group['params']:
                if p.grad is not None and not bool(
                        torch.isfinite(p.grad).all()):
                    return False
        return True

    def _agree(self, finite):
        """All ranks skip together (min over ranks)."""
        if torch_dist.is_available() and torch_dist.is_initialized() and \
                torch_dist.get_world_size() > 1:
            flag = torch.tensor([1.0 if finite else 0.0])
            if torch_dist.get_backend() == 'nccl':
                flag = flag.cuda()
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MIN)
            finite = bool(flag.item() > 0.5)
        return finite

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None):
        """Backward; then step only if the loss (of every accumulated
        micro-batch) and all gradients are finite."""
        loss = self.scale_loss(loss)
        self._loss_finite &= bool(torch.isfinite(loss.detach()).all())
        self.backward(loss)
        if not self.should_update():
            return
        finite = self._loss_finite and (not self.check_grads
                                        or self._grads_finite())
        finite = self._agree(finite)
        self._loss_finite = True
        if finite:
            self.nonfinite_streak = 0
            self.step(**(step_kwargs or {}))
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

    def state_dict(self):
        state = super().state_dict()
        state['nonfinite_skips'] = self.nonfinite_skips
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        self.nonfinite_skips = int(state_dict.pop('nonfinite_skips', 0))
        super().load_state_dict(state_dict)


@OPTIM_WRAPPERS.register_module()
class SafeOptimWrapper(NonFiniteGuardMixin, OptimWrapper):
    """``OptimWrapper`` that skips non-finite updates.

    Args:
        max_consecutive (int): stop with an error after this many
            consecutive non-finite steps (default 5).
        check_grads (bool): also require finite gradients (default True).
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
                 **kwargs):
        super().__init__(*args, max_consecutive=max_consecutive,
                         check_grads=check_grads, **kwargs)
