"""Vectorised ReID retrieval evaluation (CMC, mAP, mINP) and the ReID protocol base.

Definitions (the SYSU-MM01 authors' ``get_cmc_multi_cam.m`` / ``get_map_multi_cam.m``, and
mINP as in the AGW code, ``eval_metrics.py``, mangye16):

- Distance: cosine distance ``1 - <q, g>`` of L2-normalised features (a zero vector stays zero:
  distance 1 to everything).
- Ranking: the gallery sorted by distance with a **stable** sort, as MATLAB's ``sort``: equal
  distances keep the gallery order (the order of the npz; a trial gallery keeps the order of
  the candidate gallery it was drawn from).
- Exclusion: for a query from camera ``a``, gallery images from camera ``b`` are removed from its
  ranking for every ``(a, b)`` in ``exclude`` (SYSU-MM01: ``(3, 2)``: cams 2 and 3 share a
  location; the official code maps cam 3 to location 2 and removes same-location images).
- A query is *valid* when a true match (same identity) is left after exclusion; invalid queries
  are left out of every mean (CMC, mAP, mINP), as in the official code.
- CMC, ``cmc="distinct"`` (SYSU-MM01, the authors' code): the ranked gallery identities with
  repeats removed, in order (``unique(..., 'stable')``); the rank of a query is the position of
  its identity in that list. ``cmc="image"`` (RegDB, AGW's ``eval_regdb``): the position of the
  first true-match image. Rank-k is the percentage of valid queries with rank <= k.
- AP over images: ``mean_i (i / r_i)`` with ``r_i`` the (1-based, after exclusion) rank of the
  i-th true match; mINP: ``n / r_n`` (number of true matches over the rank of the last one).

Everything runs in torch over blocks of queries (no Python loop per query), on the GPU when one
is available. Distances are computed once per query block against the union of the trial
galleries, and each trial ranks its own columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol

RANKS = (1, 10, 20)


@dataclass
class RetrievalResult:
    """Per-query results of one gallery (one trial)."""

    rank: np.ndarray
    """(Q,) int64: the query's CMC rank (1-based; 0 for an invalid query)."""
    ap: np.ndarray
    """(Q,) float64 average precision (nan for an invalid query)."""
    inp: np.ndarray
    """(Q,) float64 inverse negative penalty (nan for an invalid query)."""
    valid: np.ndarray
    """(Q,) bool: a true match was left after exclusion."""

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    def cmc(self, max_rank: int = 20) -> np.ndarray:
        """(max_rank,) fraction of valid queries ranked within 1..k."""
        r = self.rank[self.valid]
        if r.size == 0:
            return np.full(max_rank, np.nan)
        return (r[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(axis=0)

    def metrics(self, ranks: Sequence[int] = RANKS) -> dict[str, float]:
        """``rank-k``, ``mAP`` and ``mINP`` in percent over the valid queries."""
        if self.num_valid == 0:
            raise ValueError(
                "no query has a true match in the gallery (after exclusions): nothing to score"
            )
        cmc = self.cmc(max(ranks))
        out = {f"rank-{k}": float(100.0 * cmc[k - 1]) for k in ranks}
        out["mAP"] = float(100.0 * self.ap[self.valid].mean())
        out["mINP"] = float(100.0 * self.inp[self.valid].mean())
        return out


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _as_tensor(x: Any, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def rank_block(
    dist: torch.Tensor,
    q_ids: torch.Tensor,
    q_cams: torch.Tensor,
    g_ids: torch.Tensor,
    g_cams: torch.Tensor,
    exclude: Sequence[tuple[int, int]] = (),
    cmc: str = "distinct",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rank, ap, inp, valid)`` of a block of queries against one gallery, from ``dist``
    ``(B, G)``. Vectorised over the block; see the module docstring for the definitions."""
    b, g = dist.shape
    order = torch.sort(dist, dim=1, stable=True).indices
    gid = g_ids[order]
    keep = torch.ones((b, g), dtype=torch.bool, device=dist.device)
    if exclude:
        gcam = g_cams[order]
        for qa, gb in exclude:
            keep &= ~((q_cams[:, None] == qa) & (gcam == gb))
    match = (gid == q_ids[:, None]) & keep
    kept_rank = keep.cumsum(dim=1)  # 1-based rank among the kept images
    n_match = match.sum(dim=1)
    valid = n_match > 0
    fdt = torch.float64  # AP / INP from integer ranks: exact whatever the distance precision
    precision = match.cumsum(dim=1).to(fdt) / kept_rank.clamp(min=1).to(fdt)
    ap = (precision * match).sum(dim=1) / n_match.clamp(min=1).to(fdt)
    last = (kept_rank * match).amax(dim=1) if g else torch.zeros(b, dtype=torch.long)
    inp = n_match.to(fdt) / last.clamp(min=1).to(fdt)
    big = torch.full_like(kept_rank, g + 1)
    if cmc == "image":
        rank = torch.where(match, kept_rank, big).amin(dim=1) if g else big.sum(dim=1)
    elif cmc == "distinct":
        # compact identities 0..U-1 of the gallery; first kept position of each per query
        uniq, uid = torch.unique(g_ids, return_inverse=True)
        pos = torch.arange(g, device=dist.device).expand(b, g)
        first = torch.full((b, uniq.numel()), g, dtype=torch.long, device=dist.device)
        first.scatter_reduce_(1, uid[order], torch.where(keep, pos, g), reduce="amin")
        q_uid = torch.searchsorted(uniq, q_ids).clamp(max=max(uniq.numel() - 1, 0))
        own = first.gather(1, q_uid[:, None]) if uniq.numel() else torch.zeros((b, 1))
        rank = (first <= own).sum(dim=1)
    else:
        raise ValueError(f"cmc must be 'distinct' or 'image', got {cmc!r}")
    rank = torch.where(valid, rank, torch.zeros_like(rank))
    nan = torch.full_like(ap, float("nan"))
    return rank, torch.where(valid, ap, nan), torch.where(valid, inp, nan), valid


def evaluate(
    query_feat: Any,
    query_ids: Any,
    query_cams: Any,
    gallery_feat: Any,
    gallery_ids: Any,
    gallery_cams: Any,
    trials: Sequence[np.ndarray] | None = None,
    exclude: Sequence[tuple[int, int]] = (),
    cmc: str = "distinct",
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float64,
    block_size: int | None = None,
) -> list[RetrievalResult]:
    """Score queries against one gallery, or against each trial's gallery.

    ``trials``: a list of index arrays into the gallery (one per trial; None: the whole gallery
    once). The result list has one :class:`RetrievalResult` per trial. ``dtype`` is the
    precision of the distances (float64 by default, so rankings match a NumPy float64
    implementation; float32 is faster and differs only for distances within ~1e-7)."""
    dev = torch.device(device) if device is not None else default_device()
    qf = torch.nn.functional.normalize(_as_tensor(query_feat, dev, dtype), dim=1)
    gf_all = _as_tensor(gallery_feat, dev, dtype)
    q_ids = _as_tensor(np.asarray(query_ids, np.int64), dev)
    q_cams = _as_tensor(np.asarray(query_cams, np.int64), dev)
    g_ids_all = np.asarray(gallery_ids, np.int64)
    g_cams_all = np.asarray(gallery_cams, np.int64)
    n_gallery = g_ids_all.shape[0]
    subsets = (
        [np.arange(n_gallery)] if trials is None else [np.asarray(t, np.int64) for t in trials]
    )
    union = np.unique(np.concatenate(subsets)) if subsets else np.zeros(0, np.int64)
    gf = torch.nn.functional.normalize(gf_all[_as_tensor(union, dev)], dim=1)
    cols = [_as_tensor(np.searchsorted(union, s), dev) for s in subsets]
    g_ids = [_as_tensor(g_ids_all[s], dev) for s in subsets]
    g_cams = [_as_tensor(g_cams_all[s], dev) for s in subsets]
    n_q = qf.shape[0]
    widest = max([len(s) for s in subsets] + [len(union), 1])
    step = block_size or max(1, min(n_q, (1 << 22) // widest))
    parts: list[list[tuple[torch.Tensor, ...]]] = [[] for _ in subsets]
    for start in range(0, n_q, step):
        sl = slice(start, start + step)
        dist_u = 1.0 - qf[sl] @ gf.T
        for t in range(len(subsets)):
            out = rank_block(
                dist_u[:, cols[t]], q_ids[sl], q_cams[sl], g_ids[t], g_cams[t], exclude, cmc
            )
            parts[t].append(out)
    results = []
    for t in range(len(subsets)):
        rank, ap, inp, valid = (torch.cat([p[i] for p in parts[t]]).cpu().numpy() for i in range(4))
        results.append(
            RetrievalResult(
                rank.astype(np.int64),
                ap.astype(np.float64),
                inp.astype(np.float64),
                valid.astype(bool),
            )
        )
    return results


def mean_metrics(per_trial: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = per_trial[0].keys()
    return {k: float(np.mean([m[k] for m in per_trial])) for k in keys}


# --------------------------------------------------------------------------------------------
# Protocol base
# --------------------------------------------------------------------------------------------
REID_METRICS = (
    Metric("rank-1", description="CMC rank-1: % of valid queries whose identity ranks first"),
    Metric("rank-10", description="CMC rank-10"),
    Metric("rank-20", description="CMC rank-20"),
    Metric("mAP", description="mean average precision over the ranked gallery images"),
    Metric("mINP", description="mean inverse negative penalty (AGW): matches / rank of last"),
)

REID_NPZ_KEYS = {
    "query_feat": "(Q, D) float query features (L2-normalised here; cosine distance)",
    "query_ids": "(Q,) int identity of each query image",
    "query_cams": "(Q,) int camera of each query image",
    "gallery_feat": "(G, D) float gallery features",
    "gallery_ids": "(G,) int identity of each gallery image",
    "gallery_cams": "(G,) int camera of each gallery image",
}


class ReidProtocol(Protocol):
    """Shared input checks and npz reading of the ReID protocols."""

    metrics: ClassVar[tuple[Metric, ...]] = REID_METRICS
    primary: ClassVar[str] = "rank-1"
    npz_keys: ClassVar[dict[str, str]] = REID_NPZ_KEYS
    optional_npz_keys: ClassVar[dict[str, str]] = {}
    """Keys read from the npz when present (absent: None)."""

    def __init__(
        self,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float64,
        block_size: int | None = None,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.block_size = block_size

    def score_npz(self, path: str) -> Any:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in self.npz_keys if k not in data.files]
            if missing:
                raise ValueError(
                    f"{path}: missing key(s) {', '.join(missing)} for protocol {self.id}; "
                    f"expected: {', '.join(self.npz_keys)} (found: {', '.join(data.files)})"
                )
            keys = list(self.npz_keys) + [k for k in self.optional_npz_keys if k in data.files]
            arrays = {k: data[k] for k in keys}
        try:
            return self.score(**arrays)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def check_arrays(self, **arrays: Any) -> dict[str, np.ndarray]:
        """Validate shapes and types; returns NumPy arrays (features float, the rest int64)."""
        out: dict[str, np.ndarray] = {}
        for side in ("query", "gallery"):
            feat = np.asarray(arrays[f"{side}_feat"])
            if feat.ndim != 2 or not np.issubdtype(feat.dtype, np.number):
                raise ValueError(
                    f"key {side}_feat: expected a 2-D float array (items x dims), got "
                    f"{feat.dtype} {feat.shape}"
                )
            if not np.isfinite(feat).all():
                raise ValueError(f"key {side}_feat: holds NaN or infinite values")
            out[f"{side}_feat"] = feat
            for what in ("ids", "cams"):
                key = f"{side}_{what}"
                arr = np.asarray(arrays[key])
                if arr.ndim != 1 or arr.shape[0] != feat.shape[0]:
                    raise ValueError(
                        f"key {key}: expected shape ({feat.shape[0]},) to match {side}_feat, "
                        f"got {arr.shape}"
                    )
                if arr.size and not np.issubdtype(arr.dtype, np.integer):
                    if not np.issubdtype(arr.dtype, np.floating) or np.any(arr != np.round(arr)):
                        raise ValueError(f"key {key}: expected integers, got {arr.dtype}")
                out[key] = arr.astype(np.int64)
        if out["query_feat"].shape[1] != out["gallery_feat"].shape[1]:
            raise ValueError(
                f"keys query_feat / gallery_feat: feature sizes differ "
                f"({out['query_feat'].shape[1]} vs {out['gallery_feat'].shape[1]})"
            )
        if out["query_feat"].shape[0] == 0 or out["gallery_feat"].shape[0] == 0:
            raise ValueError("keys query_feat / gallery_feat: no query or no gallery items")
        return out
