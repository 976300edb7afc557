"""Loading and saving checkpoints safely.

Checkpoints handed in by a user (teacher weights, ``tools/test.py`` and
``tools/sample.py`` inputs) are read with ``weights_only=True`` or from
safetensors: a pickle that would run code is refused. Only a run's own resume
files are read with a short allow-list of mmengine/NumPy classes (see
:mod:`mmdistill.engine.runner`). Writes are atomic: temporary file, fsync,
rename, so a kill mid-write leaves the previous file intact.
"""
import os
import pickle
import tempfile
import zipfile

import torch

from .errors import UserError
from .package import resolve_package_path


def is_url(path) -> bool:
    """True for an http(s) address."""
    return isinstance(path, str) and path.startswith(('http://', 'https://'))


def download_checkpoint(url: str, progress: bool = True) -> str:
    """The local copy of the checkpoint at ``url`` in the torch hub cache
    (``torch.hub.get_dir()/checkpoints/<file name>``), downloaded once.

    A file named like ``name-1a2b3c4d.pth`` (tools/model_converters/
    publish_model.py) must have a SHA-256 starting with those 8 hex digits.
    The download goes to a temporary file first, so an interrupted one
    leaves no partial checkpoint behind.

    Raises:
        UserError: one line naming the URL and the fix.
    """
    import re
    from urllib.parse import unquote, urlparse
    name = os.path.basename(unquote(urlparse(url).path))
    if not name:
        raise UserError(f'cannot tell the file name of checkpoint URL {url} '
                        '(it should end in the file name, e.g. .../x.pth)')
    folder = os.path.join(torch.hub.get_dir(), 'checkpoints')
    dest = os.path.join(folder, name)
    if os.path.isfile(dest):
        return dest
    m = re.search(r'-([0-9a-f]{8,})\.[A-Za-z]+$', name)
    try:
        os.makedirs(folder, exist_ok=True)
        torch.hub.download_url_to_file(
            url, dest, hash_prefix=m.group(1) if m else None,
            progress=progress)
    except Exception as e:  # noqa: BLE001  (HTTP, network, disk, hash)
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if 'invalid hash value' in reason:
            reason = ('its SHA-256 does not match the hash in the file '
                      'name')
        raise UserError(
            f'cannot download checkpoint {url}: {reason[:160]} (check the '
            'URL and the network, or download the file yourself and give '
            f'its local path; the cache folder is {folder})') from e
    return dest


def load_state_dict(path, map_location='cpu'):
    """Load a user-supplied checkpoint without executing code.

    Accepts an mmengine checkpoint (``{'state_dict': ..., 'meta': ...}``),
    a bare state dict, or a ``.safetensors`` file, as a local path or an
    http(s) URL (downloaded once into the torch hub cache, see
    :func:`download_checkpoint`; the copy is read the same safe way). A
    relative path that does not exist from the working folder is looked up
    in the source checkout, then in the installed package
    (:func:`resolve_package_path`), so the shipped ``checkpoints/*.pth``
    load from anywhere.

    Raises:
        UserError: missing, truncated/corrupt, unsafe file, or a failed
            download.
    """
    if is_url(path):
        path = download_checkpoint(path)
    path = resolve_package_path(path)
    if not os.path.isfile(path):
        raise UserError(f'checkpoint not found: {path} (check the path, or '
                        'train one with tools/train.py)')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        try:
            return load_file(path, device=str(map_location))
        except Exception as e:  # noqa: BLE001
            raise UserError(f'corrupt safetensors checkpoint {path}: {e} '
                            '(re-download or re-export it)') from e
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        named = [ln for ln in lines if 'GLOBAL' in ln or
                 'Unsupported global' in ln]
        msg = (named or lines or [type(e).__name__])[0]
        if 'weights_only' in str(e) or 'Unsupported global' in str(e):
            raise UserError(
                f'refusing to load {path}: it holds Python objects that '
                f'could run code ({msg[:120]}); only load checkpoints from '
                'sources you trust, converted to plain tensors or '
                'safetensors') from e
        raise UserError(f'corrupt checkpoint {path}: {msg[:160]} (re-save '
                        'or re-download it)') from e
    except PermissionError as e:
        raise UserError(f'cannot read checkpoint {path}: permission denied '
                        '(fix the file permissions)') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            OSError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f'truncated or corrupt checkpoint {path}: '
                        f'{first.split(". ")[0][:160]} (re-save or '
                        're-download it)') from e
    if isinstance(ckpt, dict) and 'state_dict' in ckpt:
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, dict):
        raise UserError(f'checkpoint {path} holds no state dict (got '
                        f'{type(ckpt).__name__})')
    return ckpt


def sub_state_dict(state, prefixes):
    """The entries under the first prefix of ``prefixes`` present in
    ``state``, with the prefix stripped (e.g. prefer ``net_ema.`` over
    ``net.``). Returns (prefix, sub_dict)."""
    for prefix in prefixes:
        sub = {k[len(prefix):]: v for k, v in state.items()
               if k.startswith(prefix)}
        if sub:
            return prefix, sub
    return None, {}


def check_finite(state, path):
    """Every floating-point tensor of ``state`` must be finite: NaN / inf
    weights sample blank images and break the metrics far from the cause."""
    bad = [k for k, v in state.items() if torch.is_tensor(v) and
           v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        n = sum(int((~torch.isfinite(state[k])).sum()) for k in bad)
        raise UserError(
            f'checkpoint {path} holds weights that are not finite ({n} '
            f'NaN/inf values in {len(bad)} tensors, first: {bad[0]}); use '
            'an earlier checkpoint of the run')
    return state


def load_into(module, state, what, path):
    """``module.load_state_dict(state)`` with a one-line error on mismatch
    or non-finite weights."""
    check_finite(state, path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = [ln.strip() for ln in str(e).splitlines() if ln.strip()][1:2]
        raise UserError(
            f'{what} checkpoint {path} does not match the configured '
            f'architecture ({(first or [str(e)])[0][:200]}); use the config '
            'the checkpoint was trained with') from e


def atomic_write(path, write_fn, mode='wb'):
    """Write a file atomically: ``write_fn(fileobj)`` into a temporary file in
    the same folder, fsync, then rename over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # the writer's pid is in the name: a restart removes only the temporary
    # files of writers that are gone (see ``is_stale_temp``)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{os.path.basename(path)}.p{os.getpid()}.', suffix='.tmp',
        dir=folder)
    rec = None
    try:
        with os.fdopen(fd, mode) as f:
            rec = _WriteRecorder(f)
            write_fn(rec)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the usual umask permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # the writer may hide the OS error behind its own (torch's zip
        # writer: 'unexpected pos'); report the real one, naming the target
        cause = rec.error if rec is not None and rec.error is not None \
            else e
        if isinstance(cause, OSError) and cause.errno:
            raise OSError(cause.errno, os.strerror(cause.errno), path) from e
        raise


class _WriteRecorder:
    """A file object that remembers the first OSError of ``write`` /
    ``flush`` (some writers swallow it and fail later with a message of
    their own)."""

    def __init__(self, f):
        self._f, self.error = f, None

    def _call(self, name, *args):
        try:
            return getattr(self._f, name)(*args)
        except OSError as e:
            if self.error is None:
                self.error = e
            raise

    def write(self, data):
        return self._call('write', data)

    def flush(self):
        return self._call('flush')

    def __getattr__(self, name):
        return getattr(self._f, name)


def is_stale_temp(name):
    """True for a temporary file of :func:`atomic_write` whose writer is
    this process or no longer runs (its pid is in the name); False for one
    of a live other process and for files of other origin."""
    import re

    from .lock import pid_alive
    m = re.search(r'\.p(\d+)\.[^.]*\.tmp$', os.path.basename(name))
    if m is None:
        return False
    pid = int(m.group(1))
    return pid == os.getpid() or not pid_alive(pid)


def atomic_torch_save(obj, path):
    """torch.save through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def complete_student_state(own, state, path, what='checkpoint'):
    """Check that ``state`` holds every trained weight of a model whose own
    state dict is ``own``, and fill a missing EMA from the raw weights.

    ``net.*`` (the trained network) must be complete. ``net_ema.*`` is used
    when the file has it (then it must be complete too); a file without any
    ``net_ema.*`` (e.g. ``student_{N}step.pth``) gets its EMA copied from
    ``net.*`` so the model never samples its initial weights. Other missing
    entries (a teacher loaded from ``teacher_ckpt``, counters) are left to
    the model. Returns the (possibly extended) state.

    Raises:
        UserError: naming how many keys of which prefix are missing.
    """
    state = dict(state)
    for prefix in ('net.', 'net_ema.'):
        wanted = [k for k in own if k.startswith(prefix)]
        if not wanted:
            continue
        present = [k for k in state if k.startswith(prefix)]
        if prefix == 'net_ema.' and not present:
            for k in wanted:
                src = 'net.' + k[len(prefix):]
                if src in state:
                    state[k] = state[src]
            continue
        missing = [k for k in wanted if k not in state]
        if missing:
            raise UserError(
                f'{what} {path} lacks {len(missing)} of the {len(wanted)} '
                f"weights under '{prefix}' (first: {missing[0]}); it is not "
                'a complete checkpoint of this model: use a full training '
                'checkpoint and the config it was trained with')
    return state


#: distiller buffers that describe the student (kept with its weights)
STUDENT_BUFFERS = ('num_steps', 'student_prediction_code',
                   'readout_progress', 'student_lora')


def load_student_checkpoint(model, ckpt):
    """Load a training checkpoint into the distiller ``model``: student
    weights, EMA and the progressive ``num_steps``; the teacher and frozen
    parts may be absent (a stage-1 / stage-2 checkpoint or a
    ``student_{N}step.pth`` file). Every student weight (``net.*``) must be
    in the file; the EMA is taken from the file when it holds one, else from
    ``net.*``.

    Raises:
        UserError: no or incomplete student weights, shapes of another
            config, non-finite values.
    """
    state = load_state_dict(ckpt)
    own = model.state_dict()
    keep = {k: v for k, v in state.items()
            if k.startswith(('net.', 'net_ema.'))
            or (k in STUDENT_BUFFERS and k in own)}
    if not any(k.startswith('net.') for k in keep):
        raise UserError(f'checkpoint {ckpt} holds no student weights '
                        "('net.*'); pass a stage-1 or stage-2 checkpoint")
    bad = [k for k in keep if k not in own or own[k].shape != keep[k].shape]
    if bad:
        raise UserError(f'checkpoint {ckpt} does not match the config '
                        f'(first mismatching key: {bad[0]}); use the config '
                        'the checkpoint was trained with')
    keep = complete_student_state(own, keep, ckpt)
    check_finite(keep, ckpt)
    res = model.load_state_dict(keep, strict=False)
    left = [k for k in res.missing_keys if k.startswith(('net.', 'net_ema.'))]
    assert not left and not res.unexpected_keys, (left, res.unexpected_keys)
    return model
