"""Per-view standardisation fitted on the training split only.

``fit_standardizer(views, train_idx)`` returns one :class:`ViewStats` ``(mean, std)`` per view,
computed over the training rows (population std, ``ddof=0``); a feature that is constant on the
training rows gets ``std = 1`` so it is passed through unscaled instead of dividing by zero.
``apply_standardizer(views, stats)`` returns ``(x - mean) / std`` as float32 for dense views.
Sparse views (``scipy.sparse``) are scaled only, ``x / std``, and stay sparse (centering would
make them dense); for them ``mean`` is stored as zeros, so applying ``(x - mean) / std`` to a
densified batch gives the same numbers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp


class ViewStats(NamedTuple):
    mean: np.ndarray
    """float64, one per feature (zeros for a sparse view)."""
    std: np.ndarray
    """float64, one per feature, never 0."""


def _column_stats(x: Any) -> tuple[np.ndarray, np.ndarray]:
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float64)
        mean = np.asarray(x.mean(axis=0)).ravel()
        sq = np.asarray(x.multiply(x).mean(axis=0)).ravel()
        var = np.maximum(sq - mean * mean, 0.0)
        return np.zeros_like(mean), np.sqrt(var)
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0), x.std(axis=0)


def fit_standardizer(views: list[Any], train_idx: np.ndarray) -> list[ViewStats]:
    """Per-view (mean, std) over the rows ``train_idx`` of each view (samples x features)."""
    train_idx = np.asarray(train_idx, dtype=np.int64)
    if train_idx.size == 0:
        raise ValueError("fit_standardizer: train_idx is empty; expected the training indices")
    stats = []
    for i, x in enumerate(views):
        if x.ndim != 2 or train_idx.max() >= x.shape[0]:
            raise ValueError(
                f"fit_standardizer: view {i} has shape {x.shape}; expected a 2-d samples x "
                f"features matrix with more than {int(train_idx.max())} rows"
            )
        rows = x[train_idx]
        mean, std = _column_stats(rows)
        std = np.where(std > 0, std, 1.0)
        stats.append(ViewStats(mean, std))
    return stats


def apply_standardizer(views: list[Any], stats: list[ViewStats]) -> list[Any]:
    """Standardise each view with its fitted stats (dense: float32 array; sparse: CSR float32)."""
    if len(views) != len(stats):
        raise ValueError(f"apply_standardizer: {len(views)} views but {len(stats)} fitted stats")
    out = []
    for i, (x, (mean, std)) in enumerate(zip(views, stats, strict=True)):
        if x.shape[1] != std.shape[0]:
            raise ValueError(
                f"apply_standardizer: view {i} has {x.shape[1]} features; the stats were fitted "
                f"on {std.shape[0]}"
            )
        if sp.issparse(x):
            scaled = sp.csr_matrix(x, dtype=np.float64) @ sp.diags(1.0 / std)
            out.append(sp.csr_matrix(scaled, dtype=np.float32))
        else:
            out.append(((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32))
    return out
