"""A checkpoint hook that never leaves a run without a complete checkpoint.

mmengine's ``CheckpointHook`` deletes the oldest kept checkpoint *before*
writing the new one and writes the ``last_checkpoint`` pointer in place. A
kill at the wrong moment can therefore leave fewer complete checkpoints than
``max_keep_ckpts`` promises, or an empty pointer. :class:`AtomicCheckpointHook`
orders the work so every instant has a complete, loadable state on disk:

1. the new checkpoint is written to a temporary file, fsync'ed and renamed
   (``DistillRunner.save_checkpoint``);
2. the pointer ``work_dir/last_checkpoint`` is replaced atomically;
3. only then is the oldest checkpoint beyond ``max_keep_ckpts`` removed.

Temporary files left behind by a killed writer are removed when training
starts (only those whose writer process is gone: the pid is in the name).
"""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmdistill.registry import HOOKS
from mmdistill.utils import atomic_write
from mmdistill.utils.checkpoint import is_stale_temp


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with crash-safe ordering (same arguments).

    Use it as ``default_hooks.checkpoint.type='AtomicCheckpointHook'``.
    """

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process() and osp.isdir(str(self.out_dir)):
            for tmp in glob.glob(osp.join(str(self.out_dir), '.*.tmp')):
                if is_stale_temp(tmp):  # never a live writer's file
                    os.unlink(tmp)

    def _save_checkpoint_with_step(self, runner, step, meta):
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            # recorded before saving, so the checkpoint lists itself
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'),
                     lambda f: f.write(self.last_ckpt), mode='w')
        if stale is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
