"""Publish a training checkpoint: keep the weights and ``meta``, drop the
optimizer, scheduler and message-hub state, and name the file by its
content (the first 8 hex digits of its SHA-256), as OpenMMLab's
publish_model does:

    python tools/model_converters/publish_model.py \\
        work_dirs/cfg_unet_digits/iter_3000.pth checkpoints/digits_teacher.pth
    # -> checkpoints/digits_teacher-1a2b3c4d.pth

The file is written atomically and an existing file is never overwritten.
"""
import argparse
import hashlib
import io
import os
import os.path as osp

from mmdistill.apis import cli_main
from mmdistill.utils import UserError

KEEP = ('meta', 'state_dict')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Strip and hash a checkpoint')
    p.add_argument('in_file', help='a checkpoint written by tools/train.py')
    p.add_argument('out_file', help='the published name (.pth); the hash is '
                   'appended before the extension')
    p.add_argument('--debug', action='store_true')
    return p.parse_args(argv)


def read_checkpoint(path):
    """A training checkpoint, read with ``weights_only=True`` and the
    resume allow-list of mmengine's few non-tensor classes (the files this
    project writes hold no others)."""
    import pickle

    import torch

    from mmdistill.engine.runner import resume_allowlist
    from mmdistill.utils import load_state_dict
    if not osp.isfile(path):
        raise UserError(f'checkpoint not found: {path}')
    try:
        with torch.serialization.safe_globals(resume_allowlist()):
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        ckpt = None
    except Exception:  # noqa: BLE001  (load_state_dict words the error)
        load_state_dict(path)
        raise
    if ckpt is None:
        load_state_dict(path)  # raises the one-line refusal
    if not isinstance(ckpt, dict):
        raise UserError(f'{path} holds no checkpoint dict (got '
                        f'{type(ckpt).__name__})')
    return ckpt


def published_name(out_file, data):
    """``name-xxxxxxxx.pth`` for ``name.pth`` and content ``data``."""
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    return f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'


def publish(in_file, out_file):
    """Write the stripped checkpoint; returns its final path.

    Raises:
        UserError: unreadable input, no weights, or the target exists.
    """
    import torch

    from mmdistill.utils import atomic_write
    ckpt = read_checkpoint(in_file)
    if 'state_dict' in ckpt:
        out = {k: ckpt[k] for k in KEEP if k in ckpt}
    elif ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        out = dict(state_dict=ckpt)  # a bare state dict
    else:
        raise UserError(f'{in_file} holds no state_dict; publish a '
                        'checkpoint written by tools/train.py')
    buf = io.BytesIO()
    torch.save(out, buf)
    data = buf.getvalue()
    final = published_name(out_file, data)
    exists = UserError(f'{final} already exists; refusing to overwrite it '
                       '(remove it or choose another name)')
    if osp.exists(final):
        raise exists
    # written complete under a temporary name, then linked into place: the
    # link fails if a file of that name appeared meanwhile
    tmp = final + '.publishing'
    atomic_write(tmp, lambda f: f.write(data))
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise exists from None
    finally:
        os.unlink(tmp)
    return final, sorted(set(ckpt) - set(out))


@cli_main
def main():
    args = parse_args()
    if not args.out_file.endswith('.pth'):
        raise UserError(f'{args.out_file}: the published name must end in '
                        '.pth')
    final, dropped = publish(args.in_file, args.out_file)
    size = os.path.getsize(final) / 2**20
    print(f'published {args.in_file} -> {final} ({size:.1f} MiB; dropped: '
          f'{", ".join(dropped) or "nothing"})')


if __name__ == '__main__':
    main()
