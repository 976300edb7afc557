"""Mode discovery (MGD3, Chan-Santiago et al. 2025, section 3.1).

The real training images of a class c are embedded, e_i = E(x_i) (pixels for
a pixel-space model, the VAE latent mean times the scaling factor for a latent
model), and clustered into k = IPC clusters. The cluster centres

    m_{c,j} = (1 / |S_j|) sum_{i in S_j} e_i,   j = 1..IPC

(k-means; the component means for a GMM) are the modes that sample j of
class c is guided towards. Clustering is deterministic for a seed
(``random_state`` and ``n_init`` fixed). Modes are ordered by cluster size
(largest first, ties by the index of their first member).

The clustering space need not be the diffusion space: pixel models can be
clustered on classifier features (``embedding=dict(type='classifier')``),
which group the images by shape rather than by pixel overlap. The guidance
target of cluster S_j must then be expressed in the diffusion space, with
z_i the diffusion-space embedding of real image i and c_j the centre found
in the clustering space (``target``):

    'centre'        m_j = c_j                    (clustering space = diffusion
                                                  space; the paper's choice)
    'members_mean'  m_j = (1 / |S_j|) sum_{i in S_j} z_i
    'medoid'        m_j = z_{n(j)},  n(j) = argmin_i ||e_i - c_j||

For k-means on the diffusion embedding, 'members_mean' equals 'centre' (a
converged centre is the mean of its members). 'medoid' guides towards a real
image rather than an average of several.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch

from mmdistill.registry import SYNTHESIS
from mmdistill.utils import UserError


@dataclass
class ClassModes:
    """Modes of one class.

    Attributes:
        modes (Tensor): (k, *shape) centres in the embedding space.
        nearest (np.ndarray): (k,) index (into the class's rows) of the real
            sample closest to each mode.
        sizes (np.ndarray): (k,) number of real samples per cluster.
        labels (np.ndarray): (n,) cluster index of each of the class's rows
            (in the order of ``modes``).
    """
    modes: torch.Tensor
    nearest: np.ndarray
    sizes: np.ndarray
    labels: Optional[np.ndarray] = None


EMBEDDINGS_DIFFUSION = 'diffusion'
TARGETS = ('centre', 'members_mean', 'medoid')


def mode_targets(cm: ClassModes,
                 diffusion_emb: torch.Tensor,
                 target: str = 'centre') -> torch.Tensor:
    """Diffusion-space guidance targets of one class's clusters.

    Args:
        cm (ClassModes): clusters of the class (from ``fit_class``).
        diffusion_emb (Tensor): (n, *shape) diffusion-space embeddings z_i of
            the same rows that were clustered.
        target (str): 'centre' (m_j = c_j, only if the clustering space is
            the diffusion space), 'members_mean' (m_j = mean of z_i over
            S_j; an empty GMM component falls back to its medoid) or 'medoid'
            (m_j = z_{n(j)}, the real image nearest the centre).

    Returns:
        Tensor: (k, *shape) targets m_j.
    """
    if target == 'centre':
        return cm.modes
    z = torch.as_tensor(diffusion_emb)
    if target == 'medoid':
        return z[torch.as_tensor(cm.nearest)].clone()
    if target == 'members_mean':
        out = []
        for j in range(len(cm.sizes)):
            rows = np.flatnonzero(cm.labels == j)
            out.append(z[torch.as_tensor(rows)].double().mean(0).to(z.dtype)
                       if len(rows) else z[int(cm.nearest[j])])
        return torch.stack(out)
    raise UserError(f'mode_discovery.target must be one of {TARGETS}, got '
                    f'{target!r}')


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
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    d = ((feats[None] - centres[:, None])**2).sum(-1)  # (k, n)
    return centres, d.argmin(1), sizes, rank[labels]


class _Base:
    """Common part: per-class clustering and the choice of embedding space
    and guidance target.

    Args:
        seed (int): random state of the clustering.
        embedding (str | dict): 'diffusion' (cluster the diffusion-space
            embedding: pixels, or VAE latents) or a feature-extractor config
            (``dict(type='classifier', checkpoint=...)``, see
            :func:`mmdistill.evaluation.build_extractor`) whose features are
            clustered instead.
        target (str | None): the guidance target per cluster (see
            :func:`mode_targets`); default 'centre' for the diffusion
            embedding and 'members_mean' otherwise.
    """

    def __init__(self,
                 seed: int = 0,
                 embedding: Union[str, dict] = EMBEDDINGS_DIFFUSION,
                 target: Optional[str] = None) -> None:
        self.seed = int(seed)
        if not (embedding == EMBEDDINGS_DIFFUSION or isinstance(
                embedding, dict)):
            raise UserError(
                f"mode_discovery.embedding must be 'diffusion' or a feature "
                f"extractor config such as dict(type='classifier'), got "
                f'{embedding!r}')
        self.embedding = embedding
        in_diffusion = embedding == EMBEDDINGS_DIFFUSION
        self.target = target or ('centre' if in_diffusion else
                                 'members_mean')
        if self.target not in TARGETS:
            raise UserError(f'mode_discovery.target must be one of '
                            f'{TARGETS}, got {self.target!r}')
        if self.target == 'centre' and not in_diffusion:
            raise UserError(
                "mode_discovery.target='centre' needs embedding='diffusion' "
                '(feature-space centres are not images); use '
                "'members_mean' or 'medoid'")

    def fit_class(self,
                  embeddings: torch.Tensor,
                  k: int,
                  what: str = 'this class') -> ClassModes:
        """Cluster ``embeddings`` (n, *shape) into k modes."""
        emb = torch.as_tensor(embeddings)
        shape = tuple(emb.shape[1:])
        feats = emb.reshape(len(emb), -1).double().cpu().numpy()
        _check(feats, k, what)
        centres, labels = self._cluster(feats, int(k))
        centres, nearest, sizes, labels = _order(labels, centres, feats)
        modes = torch.from_numpy(centres).to(emb.dtype).reshape((k, ) + shape)
        return ClassModes(modes, nearest, sizes, labels)

    def __call__(
        self,
        embeddings: torch.Tensor,
        labels: Union[np.ndarray, torch.Tensor, Sequence[int]],
        k: int,
        class_names: Optional[Sequence[str]] = None
    ) -> Dict[int, ClassModes]:
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
        **kwargs: ``embedding`` and ``target`` (see ``_Base``).
    """

    def __init__(self,
                 seed: int = 0,
                 n_init: int = 10,
                 max_iter: int = 300,
                 **kwargs) -> None:
        super().__init__(seed, **kwargs)
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
        **kwargs: ``embedding`` and ``target`` (see ``_Base``).
    """

    def __init__(self,
                 seed: int = 0,
                 covariance_type: str = 'diag',
                 n_init: int = 1,
                 reg_covar: float = 1e-3,
                 **kwargs) -> None:
        super().__init__(seed, **kwargs)
        self.covariance_type, self.n_init = covariance_type, int(n_init)
        self.reg_covar = float(reg_covar)

    def _cluster(self, feats, k):
        from sklearn.mixture import GaussianMixture
        gm = GaussianMixture(n_components=k,
                             covariance_type=self.covariance_type,
                             n_init=self.n_init, reg_covar=self.reg_covar,
                             random_state=self.seed).fit(feats)
        return gm.means_, gm.predict(feats)
