"""Pure metric math: Frechet distance, Inception Score, accuracy.

All statistics are computed in float64.
"""
from typing import Tuple, Union

import numpy as np
import torch


def _np64(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def feature_statistics(
    features: Union[torch.Tensor, np.ndarray]
) -> Tuple[np.ndarray, np.ndarray]:
    """Mean mu = 1/N sum_i f_i and unbiased covariance
    Sigma = 1/(N-1) sum_i (f_i - mu)(f_i - mu)^T of features (N, D), float64.
    """
    f = _np64(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f'need features of shape (N >= 2, D), got '
                         f'{f.shape}')
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1],
                                                      f.shape[1])


def _sqrtm_psd(a):
    """Symmetric square root of a symmetric positive semi-definite matrix by
    eigen-decomposition (negative round-off eigenvalues clipped to 0)."""
    a = (a + a.T) / 2
    vals, vecs = np.linalg.eigh(a)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1: Union[torch.Tensor, np.ndarray],
                     sigma1: Union[torch.Tensor, np.ndarray],
                     mu2: Union[torch.Tensor, np.ndarray],
                     sigma2: Union[torch.Tensor, np.ndarray]) -> float:
    """Frechet distance between N(mu1, Sigma1) and N(mu2, Sigma2):

        d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

    computed in float64. tr((S1 S2)^{1/2}) = tr((S1^{1/2} S2 S1^{1/2})^{1/2}),
    the square root of a symmetric PSD matrix (same eigenvalues as S1 S2),
    so both roots are taken stably by symmetric eigen-decomposition; no
    complex parts or eps offsets arise.
    """
    mu1, mu2 = _np64(mu1).ravel(), _np64(mu2).ravel()
    s1, s2 = np.atleast_2d(_np64(sigma1)), np.atleast_2d(_np64(sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or \
            s1.shape != (mu1.size, mu1.size):
        raise ValueError(f'statistics of mismatched shapes: mu {mu1.shape} '
                         f'vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}')
    r1 = _sqrtm_psd(s1)
    tr_covmean = float(np.sqrt(np.clip(
        np.linalg.eigvalsh((r1 @ s2 @ r1 + (r1 @ s2 @ r1).T) / 2), 0,
        None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(feat1: Union[torch.Tensor, np.ndarray],
                      feat2: Union[torch.Tensor, np.ndarray]) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets."""
    return frechet_distance(*feature_statistics(feat1),
                            *feature_statistics(feat2))


def inception_score(probs: Union[torch.Tensor, np.ndarray],
                    splits: int = 10) -> Tuple[float, float]:
    """Inception Score of class probabilities p(y|x_i) (N, K):

        IS = exp( 1/N sum_i KL(p(y|x_i) || p(y)) ),  p(y) = 1/N sum_i p(y|x_i)

    computed on each of ``splits`` consecutive chunks (as in Salimans et
    al.); returns (mean, std) over the chunks.
    """
    p = _np64(probs)
    if p.ndim != 2 or len(p) < splits or splits < 1:
        raise ValueError(f'need probabilities (N >= splits, K) with splits '
                         f'>= 1, got {p.shape} and splits={splits}')
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = np.where(part > 0, part * (np.log(np.clip(part, 1e-300, None))
                                        - np.log(np.clip(py, 1e-300, None))),
                      0.0).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def accuracy(probs_or_logits: Union[torch.Tensor, np.ndarray],
             labels: Union[torch.Tensor, np.ndarray]) -> float:
    """Fraction of rows whose argmax equals ``labels``."""
    pred = _np64(probs_or_logits).argmax(1)
    labels = _np64(labels).astype(np.int64)
    if pred.shape != labels.shape:
        raise ValueError(f'{pred.shape[0]} predictions vs {labels.shape[0]} '
                         'labels')
    return float((pred == labels).mean())
