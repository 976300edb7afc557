"""Mode discovery (MGD3, Chan-Santiago et al. 2025, section 3.1).

The real training images of a class c are embedded, e_i = E(x_i) (pixels for
a pixel-space model, the VAE latent mean times the scaling factor for a latent
model), and clustered into k = IPC clusters. The cluster centres

    m_{c,j} = (1 / |S_j|) sum_{i in S_j} e_i,   j = 1..IPC

(k-means; the component means for a GMM) are the modes that sample j of
class c is guided towards. Clustering is deterministic for a seed
(``random_state`` and ``n_init`` fixed). Modes are ordered by cluster size
(largest first, ties by the index of their first member).
"""
from dataclasses import dataclass

import numpy as np
import torch

from mmdistill.utils import UserError
from .registry import SYNTHESIS


@dataclass
class ClassModes:
    """Modes of one class.

    Attributes:
        modes (Tensor): (k, *shape) centres in the embedding space.
        nearest (np.ndarray): (k,) index (into the class's rows) of the real
            sample closest to each mode.
        sizes (np.ndarray): (k,) number of real samples per cluster.
    """
    modes: torch.Tensor
    nearest: np.ndarray
    sizes: np.ndarray


def _check(feats, k, what):
    n = feats.shape[0]
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f'ipc must be a positive integer, got {k!r}')
    if k > n:
        raise UserError(
            f'ipc={k} is larger than the {n} real images of {what}: k-means '
            f'cannot find {k} modes; use ipc <= {n}')


def _order(labels, centres, feats):
    k = centres.shape[0]
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == j)[0]
                      if sizes[j] else len(labels) for j in range(k)])
    order = np.lexsort((first, -sizes))
    centres, sizes = centres[order], sizes[order]
    d = ((feats[None] - centres[:, None])**2).sum(-1)  # (k, n)
    return centres, d.argmin(1), sizes


class _Base:

    def __init__(self, seed=0):
        self.seed = int(seed)

    def fit_class(self, embeddings, k, what='this class'):
        """Cluster ``embeddings`` (n, *shape) into k modes."""
        emb = torch.as_tensor(embeddings)
        shape = tuple(emb.shape[1:])
        feats = emb.reshape(len(emb), -1).double().cpu().numpy()
        _check(feats, k, what)
        centres, labels = self._cluster(feats, int(k))
        centres, nearest, sizes = _order(labels, centres, feats)
        modes = torch.from_numpy(centres).to(emb.dtype).reshape((k, ) + shape)
        return ClassModes(modes, nearest, sizes)

    def __call__(self, embeddings, labels, k, class_names=None):
        """Modes of every class: {class_index: ClassModes}."""
        labels = np.asarray(labels)
        out = {}
        for c in np.unique(labels):
            name = class_names[c] if class_names is not None else str(c)
            out[int(c)] = self.fit_class(embeddings[labels == c], k,
                                         f'class {name!r}')
        return out


@SYNTHESIS.register_module()
class KMeansModes(_Base):
    """k-means (Lloyd, k-means++ init) with k = IPC per class.

    Minimises sum_i ||e_i - m_{a(i)}||^2; the best of ``n_init`` runs.

    Args:
        seed (int): ``random_state`` of scikit-learn's KMeans.
        n_init (int): restarts (fixed so the result is reproducible).
        max_iter (int): Lloyd iterations per restart.
    """

    def __init__(self, seed=0, n_init=10, max_iter=300):
        super().__init__(seed)
        self.n_init, self.max_iter = int(n_init), int(max_iter)

    def _cluster(self, feats, k):
        from sklearn.cluster import KMeans
        km = KMeans(n_clusters=k, n_init=self.n_init, max_iter=self.max_iter,
                    random_state=self.seed).fit(feats)
        return km.cluster_centers_, km.labels_


@SYNTHESIS.register_module()
class GMMModes(_Base):
    """Gaussian mixture with k = IPC components; modes are the means.

    Args:
        seed (int): ``random_state``.
        covariance_type (str): 'diag' (default), 'spherical', 'full', 'tied'.
        n_init (int): restarts.
        reg_covar (float): added to the covariance diagonal.
    """

    def __init__(self, seed=0, covariance_type='diag', n_init=1,
                 reg_covar=1e-3):
        super().__init__(seed)
        self.covariance_type, self.n_init = covariance_type, int(n_init)
        self.reg_covar = float(reg_covar)

    def _cluster(self, feats, k):
        from sklearn.mixture import GaussianMixture
        gm = GaussianMixture(n_components=k,
                             covariance_type=self.covariance_type,
                             n_init=self.n_init, reg_covar=self.reg_covar,
                             random_state=self.seed).fit(feats)
        return gm.means_, gm.predict(feats)
