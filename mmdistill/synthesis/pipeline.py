"""The MGD3 synthesis pipeline: real data -> modes -> mode-guided samples ->
a class-folder data set on disk.

Output folder layout::

    out_dir/<class name>/<j:05d>.png   IPC images per class
    out_dir/annotations.txt            "<class name>/<file> <label>" lines
    out_dir/modes.pt                   modes, nearest real index, sizes
    out_dir/manifest.json              settings, fingerprint, seed, modes,
                                       counts, status

Every image (class c, index j) has its own seed derived from (seed, c, j):
its start noise and the ancestral noise of every step come from its own
``torch.Generator``, so the result does not depend on batching, and an
interrupted run resumes by skipping images already written (PNGs are
written atomically, so a present PNG is complete; it is still re-checked).
"""
import hashlib
import json
import os
import shutil
import time

import numpy as np
import torch

from mmdistill.diffusion import time_grid
from mmdistill.evaluation import build_extractor
from mmdistill.registry import DATASETS, SYNTHESIS
from mmdistill.utils import UserError, atomic_torch_save, atomic_write
from .guidance import check_guidance_args, mode_guided_sample, start_index
from .modes import EMBEDDINGS_DIFFUSION, mode_targets

MANIFEST = 'manifest.json'
ANNOTATIONS = 'annotations.txt'
MODES = 'modes.pt'
SOURCES = ('generator', 'real_random', 'real_full')
INITS = ('noise', 'nearest_real')
DEFAULT_SYNTHESIS = dict(source='generator', ipc=10, steps=50, guidance=2.0,
                         lam=0.1, t_stop=None, sampler='ddpm', init='noise',
                         t_init=0.6, batch_size=256)


def to_plain(obj):
    """ConfigDict/tuples -> JSON-friendly dicts and lists."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def synthesis_settings(cfg):
    """The settings that define a synthetic data set (and its
    fingerprint), with defaults filled in."""
    syn = {**DEFAULT_SYNTHESIS, **to_plain(cfg.get('synthesis', {}))}
    if syn['t_stop'] is None:
        syn['t_stop'] = int(syn['steps']) // 2
    return dict(seed=int(cfg.get('seed', 0)),
                generator=to_plain(cfg.get('generator')),
                real_data=to_plain(cfg.get('real_data')),
                mode_discovery=to_plain(cfg.get('mode_discovery',
                                                dict(type='KMeansModes'))),
                synthesis=syn)


def fingerprint(settings):
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()
                          ).hexdigest()[:16]


def image_seed(seed, c, j):
    """A 63-bit seed for image j of class c."""
    h = hashlib.sha256(f'mgd3:{seed}:{c}:{j}'.encode()).digest()
    return int.from_bytes(h[:8], 'little') & (2**63 - 1)


def check_settings(s):
    syn = s['synthesis']
    if syn['source'] not in SOURCES:
        raise UserError(f"synthesis.source must be one of {SOURCES}, got "
                        f"{syn['source']!r}")
    if syn['init'] not in INITS:
        raise UserError(f"synthesis.init must be one of {INITS}, got "
                        f"{syn['init']!r}")
    ipc = syn['ipc']
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise UserError(f'synthesis.ipc must be a positive integer, got '
                        f'{ipc!r}')
    if syn['source'] == 'generator':
        if not s['generator']:
            raise UserError('the config has no generator (set generator='
                            'dict(type=...))')
        check_guidance_args(syn['steps'], syn['lam'], syn['t_stop'],
                            syn['sampler'])
        if syn['init'] == 'nearest_real':
            start_index(syn['steps'], syn['t_init'])
    if not s['real_data']:
        raise UserError('the config has no real_data (the real training set '
                        'that modes are found in)')


def _labels(ds):
    if hasattr(ds, 'labels'):
        return np.asarray(ds.labels)
    if hasattr(ds, 'items'):
        return np.asarray([lab for _, lab in ds.items])
    return np.asarray([int(ds[i]['data_samples']) for i in range(len(ds))])


def _images(ds, idx):
    return torch.stack([ds[int(i)]['inputs'] for i in idx])


def to_uint8(img):
    """(C, H, W) in [-1, 1] -> uint8 HWC / HW array."""
    arr = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    arr = arr.to(torch.uint8).numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def save_png(img, path):
    from PIL import Image
    im = Image.fromarray(to_uint8(img))
    atomic_write(path, lambda f: im.save(f, format='PNG'))


def valid_png(path, size):
    """True if ``path`` is a readable PNG of (W, H) ``size``."""
    if not os.path.isfile(path):
        return False
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            return im.size == size
    except Exception:  # noqa: BLE001
        return False


def _dump_json(obj):
    return lambda f: f.write(json.dumps(obj, indent=1).encode())


def _load_modes(path):
    """``modes.pt`` of a run being resumed; a damaged file is a one-line
    error (the run's other files are left alone)."""
    import pickle
    import zipfile
    try:
        data = torch.load(path, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError,
            zipfile.BadZipFile, pickle.UnpicklingError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(
            f'{path} is damaged ({first.split(". ")[0][:120]}); delete it to '
            'recompute the modes on --resume, or start the run again with '
            '--overwrite') from e
    keys = ('modes', 'nearest', 'sizes')
    if not isinstance(data, dict) or not all(k in data for k in keys):
        raise UserError(
            f'{path} is damaged (not a modes file: expected a dict with '
            f'{", ".join(keys)}); delete it to recompute the modes on '
            '--resume, or start the run again with --overwrite')
    return data


class Synthesizer:
    """Builds one synthetic data set from a config (see ``configs/mgd3``).

    Args:
        cfg: a config with ``seed``, ``generator``, ``real_data``,
            ``mode_discovery`` and ``synthesis`` (see DEFAULT_SYNTHESIS).
        out_dir (str): output folder.
        resume (bool): continue the run already in ``out_dir`` even if its
            settings differ from ``cfg`` (its saved settings are used).
        overwrite (bool): delete a different run in ``out_dir`` first.
        progress (bool): show a tqdm progress bar.
    """

    def __init__(self, cfg, out_dir, resume=False, overwrite=False,
                 progress=True, log=print):
        self.out_dir, self.progress, self.log = out_dir, progress, log
        settings = synthesis_settings(cfg)
        check_settings(settings)  # before anything in out_dir is touched
        settings = self._prepare_folder(settings, resume, overwrite)
        check_settings(settings)
        self.settings = settings
        self.fp = fingerprint(settings)
        self.syn = settings['synthesis']
        self.seed = settings['seed']
        self.real = DATASETS.build(settings['real_data'])
        self.real_labels = _labels(self.real)
        self.classes = list(self.real.metainfo.get(
            'classes', [str(c) for c in np.unique(self.real_labels)]))
        self.generator = None

    # -- output folder ----------------------------------------------------
    def _prepare_folder(self, settings, resume, overwrite):
        out = self.out_dir
        man_path = os.path.join(out, MANIFEST)
        if os.path.isfile(man_path):
            try:
                with open(man_path) as f:
                    old = json.load(f)
                old_fp = old['fingerprint']
            except (ValueError, KeyError, OSError) as e:
                if overwrite:
                    shutil.rmtree(out)
                    return settings
                raise UserError(f'unreadable {man_path} ({type(e).__name__}); '
                                'pass --overwrite to start afresh') from e
            if overwrite:
                self.log(f'overwriting the run in {out}')
                shutil.rmtree(out)
                return settings
            if old_fp == fingerprint(settings):
                return settings
            if resume:
                self.log(f'resuming the run in {out} with its saved '
                         'settings (they differ from the config)')
                return old['settings']
            raise UserError(
                f'output folder {out} already holds a different synthesis run '
                f"(fingerprint {old_fp}); pass --resume to continue it, "
                '--overwrite to replace it, or choose another --out-dir')
        if os.path.isdir(out) and os.listdir(out):
            if overwrite:
                shutil.rmtree(out)
                return settings
            raise UserError(f'output folder {out} is not empty and holds no '
                            f'{MANIFEST}; pass --overwrite to replace its '
                            'contents or choose another --out-dir')
        return settings

    # -- plan ---------------------------------------------------------------
    def plan(self):
        """[(class, j, relative path)] for every image of the data set."""
        syn, items = self.syn, []
        if syn['source'] == 'real_full':
            for c in range(len(self.classes)):
                for i in np.flatnonzero(self.real_labels == c):
                    items.append((c, int(i),
                                  f'{self.classes[c]}/real_{i:06d}.png'))
            return items
        for c in range(len(self.classes)):
            for j in range(syn['ipc']):
                items.append((c, j, f'{self.classes[c]}/{j:05d}.png'))
        return items

    def _needs_modes(self):
        syn = self.syn
        return syn['source'] == 'generator' and (
            syn['lam'] > 0 or syn['init'] == 'nearest_real')

    def _gen(self):
        if self.generator is None:
            self.generator = SYNTHESIS.build(self.settings['generator'])
        return self.generator

    @torch.no_grad()
    def embed_real(self, batch_size=64):
        """Diffusion-space embeddings of all real training images."""
        gen = self._gen()
        out = []
        for s in range(0, len(self.real), batch_size):
            idx = range(s, min(s + batch_size, len(self.real)))
            out.append(gen.encode(_images(self.real, idx)).float().cpu())
        return torch.cat(out)

    @torch.no_grad()
    def embed_features(self, extractor, batch_size=256):
        """Features of all real training images from a feature extractor
        config (the clustering space of ``mode_discovery.embedding``)."""
        ext = build_extractor(extractor)
        out = []
        for s in range(0, len(self.real), batch_size):
            idx = range(s, min(s + batch_size, len(self.real)))
            out.append(ext.extract(_images(self.real, idx), probs=False)
                       ['features'].float().cpu())
        return torch.cat(out)

    def discover_modes(self):
        """Per-class modes; loaded from ``modes.pt`` when resuming."""
        path = os.path.join(self.out_dir, MODES)
        if os.path.isfile(path):
            data = _load_modes(path)
            if data.get('fingerprint') == self.fp:
                return data
        md = SYNTHESIS.build({**self.settings['mode_discovery'],
                              'seed': self.settings['mode_discovery'].get(
                                  'seed', self.seed)})
        emb = self.embed_real()
        space = emb if md.embedding == EMBEDDINGS_DIFFUSION else \
            self.embed_features(md.embedding)
        ipc = self.syn['ipc']
        modes, nearest, sizes = [], [], []
        for c, name in enumerate(self.classes):
            rows = np.flatnonzero(self.real_labels == c)
            cm = md.fit_class(space[rows], ipc, f'class {name!r}')
            modes.append(mode_targets(cm, emb[rows], md.target))
            nearest.append(torch.as_tensor(rows[cm.nearest]))
            sizes.append(torch.as_tensor(cm.sizes))
        data = dict(modes=torch.stack(modes), nearest=torch.stack(nearest),
                    sizes=torch.stack(sizes), fingerprint=self.fp)
        atomic_torch_save(data, path)
        return data

    def _write_manifest(self, status, counts, modes, extra=None):
        man = dict(format=1, status=status, fingerprint=self.fp,
                   seed=self.seed, settings=self.settings,
                   classes=self.classes, counts=counts,
                   total=int(sum(counts.values())),
                   modes=None if modes is None else dict(
                       file=MODES, shape=list(modes['modes'].shape),
                       nearest_real_index=modes['nearest'].tolist(),
                       cluster_sizes=modes['sizes'].tolist()),
                   **(extra or {}))
        atomic_write(os.path.join(self.out_dir, MANIFEST), _dump_json(man))

    # -- run ------------------------------------------------------------------
    def run(self):
        """Write the data set; returns the manifest dict."""
        t0 = time.time()
        os.makedirs(self.out_dir, exist_ok=True)
        items = self.plan()
        syn = self.syn
        if syn['source'] == 'real_random':
            for c, name in enumerate(self.classes):
                n = int((self.real_labels == c).sum())
                if syn['ipc'] > n:
                    raise UserError(f"ipc={syn['ipc']} is larger than the {n} "
                                    f'real images of class {name!r}; use '
                                    f'ipc <= {n}')
        modes = self.discover_modes() if self._needs_modes() else None
        self._write_manifest('running', {}, modes)
        size = self._image_size()
        todo = [it for it in items if not valid_png(
            os.path.join(self.out_dir, it[2]), size)]
        done_before = len(items) - len(todo)
        if done_before:
            self.log(f'resuming: {done_before} of {len(items)} images '
                     'already present and valid')
        from tqdm import tqdm
        bar = tqdm(total=len(items), initial=done_before, unit='img',
                   desc='synthesize', disable=not self.progress)
        bs = int(syn['batch_size'])
        for s in range(0, len(todo), bs):
            batch = todo[s:s + bs]
            images = self._make(batch, modes)
            for (c, j, rel), img in zip(batch, images):
                save_png(img, os.path.join(self.out_dir, rel))
            bar.update(len(batch))
        bar.close()
        counts = {}
        for c, _, _ in items:
            counts[self.classes[c]] = counts.get(self.classes[c], 0) + 1
        lines = ''.join(f'{rel} {c}\n' for c, _, rel in items)
        atomic_write(os.path.join(self.out_dir, ANNOTATIONS),
                     lambda f: f.write(lines.encode()))
        elapsed = time.time() - t0
        self._write_manifest('complete', counts, modes, dict(
            generated_this_run=len(todo), seconds_this_run=round(elapsed, 2)))
        with open(os.path.join(self.out_dir, MANIFEST)) as f:
            return json.load(f)

    def _image_size(self):
        x = self.real[0]['inputs']
        return (int(x.shape[-1]), int(x.shape[-2]))

    @torch.no_grad()
    def _make(self, batch, modes):
        syn = self.syn
        if syn['source'] != 'generator':
            return _images(self.real, [self._real_index(c, j)
                                       for c, j, _ in batch])
        gen = self._gen()
        gens = [torch.Generator().manual_seed(image_seed(self.seed, c, j))
                for c, j, _ in batch]
        shape = (len(batch), ) + tuple(gen.sample_shape)
        noise = torch.stack([torch.randn(shape[1:], generator=g)
                             for g in gens]).to(gen.device)
        labels = torch.tensor([c for c, _, _ in batch])
        m = None
        if modes is not None:
            m = torch.stack([modes['modes'][c, j] for c, j, _ in batch]).to(
                gen.device)
        t_init = 1.0
        z = noise
        if syn['init'] == 'nearest_real':
            i0 = start_index(syn['steps'], syn['t_init'])
            t_init = float(time_grid(syn['steps'])[i0])
            idx = [int(modes['nearest'][c, j]) for c, j, _ in batch]
            x0 = gen.encode(_images(self.real, idx)).to(noise)
            t = torch.full((len(batch), ), t_init, dtype=noise.dtype,
                           device=noise.device)
            a, sgm = gen.schedule.alpha_sigma(t)
            z = a.view(-1, *[1] * (z.ndim - 1)) * x0 + sgm.view(
                -1, *[1] * (z.ndim - 1)) * noise
        x0 = mode_guided_sample(gen.x_fn(labels, syn['guidance']), z,
                                gen.schedule, syn['steps'], modes=m,
                                lam=syn['lam'] if m is not None else 0.0,
                                t_stop=syn['t_stop'], sampler=syn['sampler'],
                                generator=gens, t_init=t_init)
        return gen.decode(x0).cpu()

    def _real_index(self, c, j):
        if self.syn['source'] == 'real_full':
            return j
        if not hasattr(self, '_subset'):
            rng = np.random.default_rng(self.seed)
            self._subset = {
                cc: rng.choice(np.flatnonzero(self.real_labels == cc),
                               self.syn['ipc'], replace=False)
                for cc in range(len(self.classes))}
        return int(self._subset[c][j])
