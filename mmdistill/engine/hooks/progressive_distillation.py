"""Halving schedule of progressive distillation (Salimans & Ho, ICLR 2022)."""
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.optim.scheduler.param_scheduler import INF

from mmdistill.models.sharding import full_state_dict
from mmdistill.registry import HOOKS
from mmdistill.utils import UserError, atomic_torch_save
from mmdistill.utils.checkpoint import STUDENT_BUFFERS


def halving_stages(
        n_start: Optional[int] = None,
        n_end: int = 1,
        iters_per_stage: Optional[int] = None,
        stages: Optional[Sequence[Tuple[int, int]]] = None
) -> List[Tuple[int, int]]:
    """The list [(N, iters)] of student step counts and their lengths.

    Either ``n_start``/``n_end``/``iters_per_stage`` (N = n_start,
    n_start/2, ..., n_end, each for ``iters_per_stage`` iterations) or an
    explicit ``stages`` list of (N, iters) where each N halves the previous
    one. One-line ``UserError`` on anything else.
    """
    from mmdistill.models.distillers.progressive_distiller import \
        check_power_of_two_ratio
    if stages is not None:
        out = [(int(n), int(k)) for n, k in stages]
        if not out:
            raise UserError('stages is empty; give [(N, iters), ...]')
        for (n0, _), (n1, _) in zip(out, out[1:]):
            if n1 * 2 != n0:
                raise UserError(f'stages must halve N each time, got {n0} -> '
                                f'{n1}; use e.g. [(8, 500), (4, 500), ...]')
    else:
        if n_start is None or iters_per_stage is None:
            raise UserError('ProgressiveDistillationHook needs n_start, '
                            'n_end and iters_per_stage, or stages=[(N, '
                            'iters), ...]')
        check_power_of_two_ratio(n_start, n_end)
        out, n = [], n_start
        while n >= n_end:
            out.append((n, int(iters_per_stage)))
            n //= 2
    for n, k in out:
        if n < 1 or k < 1:
            raise UserError(f'invalid stage (N={n}, iters={k}): both must be '
                            '>= 1')
    return out


def stretch_scheduler(sched: Any, ratio: float) -> None:
    """Give a parameter scheduler written for the first stage (length L_0)
    the span of a stage of length L_k = ratio * L_0:

        begin_k = round(ratio * begin_0),  end_k = round(ratio * end_0),

    and the quantities mmengine derives from them (``total_iters = end -
    begin - 1`` of the linear / poly schedulers, ``T_max`` of the cosine
    one). The first-stage span is kept on the scheduler (``_stage_span``,
    saved with its state, so a resumed run stretches from the same base);
    an open ``end`` (mmengine's INF) stays open.
    """
    base = getattr(sched, '_stage_span', None)
    if base is None:
        base = (sched.begin, sched.end, getattr(sched, 'T_max', None))
        sched._stage_span = base
    begin, end, t_max = base
    sched.begin = int(round(begin * ratio))
    if end < INF:
        sched.end = int(round(end * ratio))
    if hasattr(sched, 'total_iters'):
        sched.total_iters = sched.end - sched.begin - 1
    if t_max is not None:
        sched.T_max = max(1, int(round(t_max * ratio)))


def param_schedulers(runner: Any) -> List[Any]:
    """The runner's parameter schedulers as one flat list (mmengine keeps a
    list, or a dict of lists for several optimizers; none: empty)."""
    scheds = getattr(runner, 'param_schedulers', None)
    if not scheds:
        return []
    return [s for v in scheds.values() for s in v] if isinstance(
        scheds, dict) else list(scheds)


@HOOKS.register_module()
class ProgressiveDistillationHook(Hook):
    """Drives a :class:`ProgressiveDistiller` through its halving stages.

    At the end of the stage with N student steps (after the optimizer and
    scheduler steps of its last iteration, before checkpoints are written):

    1. the student is saved to ``student_{N}step.pth`` (atomic,
       ``weights_only``-loadable: ``{'state_dict': {'net.*', 'num_steps'},
       'meta': {...}}``);
    2. unless it was the last stage: teacher <- student, N <- N / 2, the
       optimizer state (Adam moments) is cleared, every parameter scheduler
       restarts from its initial value as if freshly built (so
       ``param_scheduler`` describes ONE stage: e.g. LinearLR from
       ``begin=0`` to ``end=iters_per_stage``). With ``stages`` of unequal
       lengths it describes the FIRST stage and is stretched to each
       stage's length L_k: begin, end (and T_max) times L_k / L_0, see
       :func:`stretch_scheduler`.

    The stage is a function of the iteration count and N lives in the
    model's ``num_steps`` buffer, and the restart happens before the
    checkpoint hooks run, so ``--resume`` continues exactly.

    N is set once, in the model: ``n_start=None`` (the default) means the
    model's ``num_steps`` as configured (read in ``before_run``, before a
    resumed checkpoint is loaded). An explicit ``n_start`` (or the first N
    of ``stages``) must equal it; a contradiction stops training with a
    one-line ``UserError``.

    Args:
        n_start (int | None): student steps in the first stage (its teacher
            takes 2 * n_start); None: the model's ``num_steps``.
        n_end (int): student steps in the last stage.
        iters_per_stage (int): iterations per stage.
        stages (list[tuple[int, int]] | None): explicit (N, iters) list
            instead of the three above.
        save_dir (str | None): where ``student_{N}step.pth`` go (default the
            work dir).
        filename_tmpl (str): file name with ``{}`` for N.
    """

    # after ParamSchedulerHook (LOW = 70), before CheckpointHook (90)
    priority = 80

    def __init__(self,
                 n_start: Optional[int] = None,
                 n_end: int = 1,
                 iters_per_stage: Optional[int] = None,
                 stages: Optional[Sequence[Tuple[int, int]]] = None,
                 save_dir: Optional[str] = None,
                 filename_tmpl: str = 'student_{}step.pth') -> None:
        if stages is None and iters_per_stage is None:
            raise UserError('ProgressiveDistillationHook needs n_start '
                            "(default: the model's num_steps), n_end and "
                            'iters_per_stage, or stages=[(N, iters), ...]')
        self.n_start, self.n_end = n_start, n_end
        self.iters_per_stage, self._stages_arg = iters_per_stage, stages
        self.save_dir, self.filename_tmpl = save_dir, filename_tmpl
        # the configured N of the model, recorded in before_run
        self._model_n: Optional[int] = None
        self.stages: Optional[List[Tuple[int, int]]] = None
        self.ends: List[int] = []
        self.total_iters = 0
        if n_start is not None or stages is not None:
            self._set_stages(
                halving_stages(n_start, n_end, iters_per_stage, stages))

    def _set_stages(self, stages: List[Tuple[int, int]]) -> None:
        self.stages, self.ends, total = stages, [], 0
        for _, k in stages:
            total += k
            self.ends.append(total)
        self.total_iters = total

    def _resolve_stages(self, model_n: int) -> None:
        """The schedule from the model's configured N (``n_start=None``),
        or a check that an explicit start agrees with it."""
        if self.stages is None:
            self._set_stages(halving_stages(model_n, self.n_end,
                                            self.iters_per_stage))
        elif self.stages[0][0] != model_n:
            what = ('n_start' if self._stages_arg is None else
                    'the first N of stages')
            raise UserError(
                f'ProgressiveDistillationHook {what} ({self.stages[0][0]}) '
                f'contradicts model.num_steps ({model_n}); set N once, in '
                'model.num_steps (n_start defaults to it)')

    @staticmethod
    def _model(runner: Any) -> Any:
        m = runner.model
        return m.module if hasattr(m, 'module') else m

    def stage_at(self, it: int) -> int:
        """Index of the stage iteration ``it`` (0-based) belongs to; the last
        stage continues after the schedule ends."""
        for k, e in enumerate(self.ends):
            if it < e:
                return k
        return len(self.stages) - 1

    def before_run(self, runner: Any) -> None:
        """Record the model's configured N (a resume loads the checkpoint's
        N later, in ``load_or_resume``)."""
        model = self._model(runner)
        if hasattr(model, 'num_steps'):
            self._model_n = int(model.num_steps)

    @staticmethod
    def _check_model(model: Any) -> None:
        if not hasattr(model, 'start_stage'):
            raise UserError('ProgressiveDistillationHook needs a '
                            'ProgressiveDistiller model')

    def before_train(self, runner: Any) -> None:
        """Resolve and check the schedule, then set (fresh run) or check
        (resumed run) the model's N for the current iteration."""
        model = self._model(runner)
        if self.stages is None or self._model_n is not None:
            self._check_model(model)
            self._resolve_stages(self._model_n if self._model_n is not None
                                 else int(model.num_steps))
        if self.total_iters > runner.max_iters:
            raise UserError(
                f'halving schedule takes {self.total_iters} iterations '
                f'({len(self.stages)} stages) but max_iters is '
                f'{runner.max_iters}; raise train_cfg.max_iters or shorten '
                'the stages')
        self._check_model(model)
        n = self.stages[self.stage_at(runner.iter)][0]
        if runner.iter == 0:
            self._check_first_stage_schedule(runner)
            model.num_steps.fill_(n)
        elif int(model.num_steps) != n:
            raise UserError(
                f'resumed model has N={int(model.num_steps)} student steps '
                f'but the halving schedule expects N={n} at iteration '
                f'{runner.iter}; resume with the config of the interrupted '
                'run')

    def _check_first_stage_schedule(self, runner: Any) -> None:
        """``param_scheduler`` describes the first stage (the others are
        stretched from it): its longest finite span must end where the first
        stage does, or the first student trains at a finished (e.g. zero)
        or unfinished learning rate. One-line ``UserError`` otherwise."""
        ends = [getattr(s, '_stage_span', (None, s.end))[1]
                for s in param_schedulers(runner)]
        ends = [int(e) for e in ends if e < INF]
        first = self.stages[0][1]
        if ends and max(ends) != first:
            raise UserError(
                f'param_scheduler ends at iteration {max(ends)} but the '
                f'first halving stage (N={self.stages[0][0]}) is {first} '
                f'iterations long; set param_scheduler end={first} (it '
                'describes the first stage, the hook stretches it to the '
                'others)')

    def before_train_iter(self, runner: Any, batch_idx: int,
                          data_batch: Any = None) -> None:
        runner.message_hub.update_scalar(
            'train/num_steps', int(self._model(runner).num_steps))

    def after_train_iter(self, runner: Any, batch_idx: int,
                         data_batch: Any = None,
                         outputs: Any = None) -> None:
        done = runner.iter + 1
        if done not in self.ends:
            return
        k = self.ends.index(done)
        model = self._model(runner)
        n = self.stages[k][0]
        self.save_student(runner, model, n, done)
        if k + 1 < len(self.stages):
            n_next = self.stages[k + 1][0]
            model.start_stage(n_next)
            self.restart_optimization(
                runner, self.stages[k + 1][1] / self.stages[0][1])
            runner.logger.info(
                f'progressive distillation: {n}-step student saved; '
                f'teacher <- student, N {n} -> {n_next} at iteration {done}')

    def save_student(self, runner: Any, model: Any, n: int,
                     done: int) -> None:
        """Write the EMA (else live) student of the N = ``n`` stage, ended
        at iteration ``done``, to ``student_{n}step.pth`` (main process)."""
        # every rank gathers a sharded student; the main process writes
        net_state = full_state_dict(model.pick_net('ema'))
        if not is_main_process():
            return
        state = {f'net.{k}': v.detach().cpu().clone()
                 for k, v in net_state.items()}
        for name in STUDENT_BUFFERS:
            if isinstance(getattr(model, name, None), torch.Tensor):
                state[name] = getattr(model, name).detach().cpu().clone()
        path = osp.join(self.save_dir or runner.work_dir,
                        self.filename_tmpl.format(n))
        atomic_torch_save(dict(state_dict=state,
                               meta=dict(num_steps=int(n), iter=int(done),
                                         prediction_type=str(
                                             model.prediction_type))), path)
        runner.logger.info(f'saved {n}-step student to {path}')

    @staticmethod
    def restart_optimization(runner: Any, length_ratio: float = 1.0) -> None:
        """Clear optimizer state (and the divergence check's loss history)
        and rebuild-equivalently reset every
        parameter scheduler (value <- initial value, counters <- -1, one
        ``step()`` as in the scheduler's constructor), its span stretched
        to a stage ``length_ratio`` times as long as the first."""
        wrappers = runner.optim_wrapper
        wrappers = list(wrappers.values()) if hasattr(
            wrappers, 'values') else [wrappers]
        for ow in wrappers:
            ow.optimizer.state.clear()
            # a new stage has a new target: its losses start afresh
            if hasattr(ow, 'reset_divergence_history'):
                ow.reset_divergence_history()
        scheds = param_schedulers(runner)
        for s in scheds:
            stretch_scheduler(s, length_ratio)
            for g in s.optimizer.param_groups:
                g[s.param_name] = g[f'initial_{s.param_name}']
        for s in scheds:
            s.last_step, s._global_step = -1, -1
            s.step()
