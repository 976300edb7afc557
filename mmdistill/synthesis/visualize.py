"""Picture of a synthetic data set: per class the modes next to the
(mode-guided) samples, and a 2-D PCA projection of the real data, the modes
and the samples (pixel-space modes only; latent modes are decoded first if a
``decode`` function is given)."""
import os
from typing import Callable, List, Optional

import numpy as np
import torch

from mmdistill.utils import UserError
from .evaluate import dataset_tensors, load_synthetic
from .pipeline import MANIFEST, MODES


def plot_modes(folder: str,
               save_path: str,
               real_cfg: dict,
               decode: Optional[Callable[[torch.Tensor],
                                         torch.Tensor]] = None,
               max_ipc: int = 10) -> str:
    """Write the figure to ``save_path`` (PNG, matplotlib Agg)."""
    import json

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    mpath = os.path.join(folder, MODES)
    if not os.path.isfile(mpath):
        raise UserError(f'{mpath} not found: the run used no modes '
                        '(lam = 0 and init = noise); nothing to plot')
    with open(os.path.join(folder, MANIFEST)) as f:
        classes = json.load(f)['classes']
    modes = torch.load(mpath, weights_only=True)['modes']  # (K, IPC, ...)
    if decode is not None:
        k, ipc = modes.shape[:2]
        modes = decode(modes.flatten(0, 1)).reshape(k, ipc, -1, *decode(
            modes[:1, 0]).shape[-2:])
    modes = modes.clamp(-1, 1)
    size, ch = modes.shape[-1], modes.shape[2]
    x, y = load_synthetic(folder, size, ch)
    x_real, y_real = dataset_tensors(real_cfg)
    k, ipc = modes.shape[:2]
    n = min(ipc, max_ipc)
    fig = plt.figure(figsize=(2 * n * 0.55 + 7, max(k * 0.6, 4)))
    gs = fig.add_gridspec(k, 2 * n + 1 + 12)
    for c in range(k):
        xs = x[y == c]
        for j in range(n):
            sample = xs[j] if j < len(xs) else None
            for col, img in ((j, modes[c, j]), (n + 1 + j, sample)):
                ax = fig.add_subplot(gs[c, col])
                ax.axis('off')
                if img is None:
                    continue
                arr = ((img + 1) / 2).permute(1, 2, 0).numpy()
                ax.imshow(arr[..., 0] if ch == 1 else arr, cmap='gray',
                          vmin=0, vmax=1)
                if j == 0 and col == 0:
                    ax.text(-0.6, 0.5, classes[c], fontsize=7, va='center',
                            ha='right', transform=ax.transAxes)
                if c == 0 and j == 0:
                    ax.set_title('modes' if col == 0 else 'samples',
                                 fontsize=7, loc='left')
    ax = fig.add_subplot(gs[:, 2 * n + 2:])
    pca = PCA(2, random_state=0).fit(x_real.flatten(1).numpy())
    pr = pca.transform(x_real.flatten(1).numpy())
    pm = pca.transform(modes.flatten(2).flatten(0, 1).numpy())
    ps = pca.transform(x.flatten(1).numpy())
    cm = plt.get_cmap('tab10')
    ym = np.repeat(np.arange(k), ipc)
    for c in range(k):
        col = cm(c % 10)
        ax.scatter(*pr[y_real.numpy() == c].T, s=3, color=col, alpha=0.25)
        ax.scatter(*ps[y.numpy() == c].T, s=14, color=col, marker='^',
                   edgecolors='k', linewidths=0.3)
        ax.scatter(*pm[ym == c].T, s=40, color=col, marker='X',
                   edgecolors='k', linewidths=0.5)
    ax.set_title('PCA: real (dots), modes (X), samples (^)', fontsize=8)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(save_path)), exist_ok=True)
    fig.savefig(save_path, dpi=80)
    plt.close(fig)
    return save_path


ROW_LABELS = dict(a='a\nreal subset', b='b\nunguided', c='c\nmodes only',
                  d='d\n+ guidance', e='e\nMGD3', ref='ref\npaper dflt')


def plot_seed_tables(tables: List[dict],
                     titles: List[str],
                     save_path: str,
                     metric: str = 'ConvNet',
                     ref_row: str = 'f') -> None:
    """Accuracy per ablation row over synthesis seeds: a bar at the pooled
    mean, a dot per synthesis seed (its mean over the classifier seeds),
    one panel per table (``tools/mgd3_table.py --seeds`` results).

    Args:
        tables (list[dict]): ``{row: result}`` with ``seed_means``.
        titles (list[str]): panel titles.
        save_path (str): PNG to write (matplotlib Agg).
        metric (str): classifier key of the results.
        ref_row (str): row drawn as a dashed line (the full real set).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    for t in tables:
        bad = [r for r, v in t.items() if 'seed_means' not in v.get(
            metric, {})]
        if bad:
            raise UserError(f'rows {bad} have no per-seed {metric} results '
                            '(run tools/mgd3_table.py with --seeds)')
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.6),
                             squeeze=False)
    order = list(ROW_LABELS)
    for ax, table, title in zip(axes[0], tables, titles):
        rows = sorted((r for r in table if r != ref_row),
                      key=lambda r: (order.index(r) if r in order
                                     else len(order), r))
        for i, r in enumerate(rows):
            m = table[r][metric]
            ax.bar(i, m['mean'], color='C0' if r != 'e' else 'C3',
                   alpha=0.6)
            ax.plot([i] * len(m['seed_means']), m['seed_means'], 'k.')
        if ref_row in table:
            ax.axhline(table[ref_row][metric]['mean'], color='k', ls='--',
                       lw=1, label=f'{ref_row}: full real set')
            ax.legend(loc='lower right', fontsize=8)
        lo = min(min(table[r][metric]['seed_means']) for r in table)
        ax.set_ylim(lo - 1.5, 100)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([ROW_LABELS.get(r, r) for r in rows],
                           fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(f'{metric} test top-1 (%)')
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(save_path)), exist_ok=True)
    fig.savefig(save_path, dpi=110)
    plt.close(fig)
