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
galleries, and each trial ranks its own columns, either by a stable sort or, when queries have
few true matches (single-shot galleries), by exact counting without a sort (:func:`rank_block`).
Both give the numbers of a per-query implementation (``tests/leaderboards/test_reid_eval.py``
checks them against one, ties included); ``benchmarks/reid_eval_speed.py`` times them.
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
    method: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rank, ap, inp, valid)`` of a block of queries against one gallery, from ``dist``
    ``(B, G)``. Vectorised over the block; see the module docstring for the definitions.

    Two exact methods give the same numbers:

    - ``"sort"``: one stable sort per row, then integer/boolean passes over the sorted rows.
    - ``"compare"``: no sort. The (1-based, after exclusion) rank of a true match ``j`` is
      ``1 + #{kept k: (d_k, k) < (d_j, j)}`` (lexicographic: distance, then gallery index, which
      is exactly its place in a stable sort), computed for the few true matches only; the
      distinct-identity rank is ``1 + #{identities u: (min d_u, argmin) < (own min, argmin)}``,
      the order in which identities first appear in the stably sorted list.

    ``"auto"`` takes ``"compare"`` when queries have at most 16 true matches on average
    (single-shot galleries), else ``"sort"``."""
    if cmc not in ("distinct", "image"):
        raise ValueError(f"cmc must be 'distinct' or 'image', got {cmc!r}")
    if method not in ("auto", "sort", "compare"):
        raise ValueError(f"method must be 'auto', 'sort' or 'compare', got {method!r}")
    b, g = dist.shape
    dev = dist.device
    keep = None
    if exclude:
        drop = torch.zeros((b, g), dtype=torch.bool, device=dev)
        for qa, gb in exclude:
            drop |= (g_cams == gb)[None, :] & (q_cams == qa)[:, None]
        keep = ~drop
    if method == "auto":  # mean number of true matches per query decides
        uniq, inverse = torch.unique(g_ids, return_inverse=True)
        at = torch.searchsorted(uniq, q_ids).clamp(max=uniq.numel() - 1)
        n_true = torch.where(uniq[at] == q_ids, torch.bincount(inverse)[at], 0)
        method = "compare" if float(n_true.double().mean()) <= 16 else "sort"
    if method == "sort":
        return _rank_sorted(dist, q_ids, g_ids, keep, cmc)
    return _rank_compare(dist, q_ids, g_ids, keep, cmc)


def _finish(
    b: int,
    rows: torch.Tensor,
    ranks: torch.Tensor,
    n_match: torch.Tensor,
    distinct_rank: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Metrics from the true-match list: ``rows`` grouped by query, ``ranks`` (1-based, after
    exclusion) ascending within each query."""
    dev = rows.device
    valid = n_match > 0
    ordinal = torch.arange(rows.numel(), device=dev) - (n_match.cumsum(0) - n_match)[rows] + 1
    f64 = torch.float64  # AP / INP from integer ranks: exact whatever the distance precision
    ap = torch.zeros(b, dtype=f64, device=dev).index_add_(
        0, rows, ordinal.to(f64) / ranks.to(f64)
    ) / n_match.clamp(min=1).to(f64)
    last = torch.zeros(b, dtype=torch.long, device=dev).scatter_reduce_(
        0, rows, ranks, reduce="amax"
    )
    inp = n_match.to(f64) / last.clamp(min=1).to(f64)
    if distinct_rank is None:  # image CMC: the rank of the first true match
        rank = torch.zeros(b, dtype=torch.long, device=dev).scatter_reduce_(
            0, rows, ranks, reduce="amin", include_self=False
        )
    else:
        rank = distinct_rank
    rank = torch.where(valid, rank, torch.zeros_like(rank))
    nan = torch.full_like(ap, float("nan"))
    return rank, torch.where(valid, ap, nan), torch.where(valid, inp, nan), valid


def _rank_sorted(
    dist: torch.Tensor,
    q_ids: torch.Tensor,
    g_ids: torch.Tensor,
    keep: torch.Tensor | None,
    cmc: str,
) -> tuple[torch.Tensor, ...]:
    b, g = dist.shape
    dev = dist.device
    order = torch.sort(dist, dim=1, stable=True).indices
    match = g_ids[order] == q_ids[:, None]
    keep_s = None if keep is None else torch.gather(keep, 1, order)
    if keep_s is not None:
        match &= keep_s
    n_match = match.sum(dim=1)
    rows, cols = match.nonzero(as_tuple=True)  # row-major: each row's matches in rank order
    if keep_s is None:
        ranks = cols + 1
    else:
        ranks = keep_s.cumsum(dim=1, dtype=torch.int32)[rows, cols].long()
    distinct = None
    if cmc == "distinct":
        # first kept position of each identity; the query's identity ranks after every
        # identity first seen at or before its own first match
        uniq, uid = torch.unique(g_ids, return_inverse=True)
        pos = torch.arange(g, device=dev).expand(b, g)
        if keep_s is not None:
            pos = torch.where(keep_s, pos, g)
        first = torch.full((b, uniq.numel()), g, dtype=torch.long, device=dev)
        first.scatter_reduce_(1, uid[order], pos, reduce="amin")
        own = torch.full((b,), g, dtype=torch.long, device=dev).scatter_reduce_(
            0, rows, cols, reduce="amin"
        )
        distinct = (first <= own[:, None]).sum(dim=1)
    return _finish(b, rows, ranks, n_match, distinct)


def _rank_compare(
    dist: torch.Tensor,
    q_ids: torch.Tensor,
    g_ids: torch.Tensor,
    keep: torch.Tensor | None,
    cmc: str,
) -> tuple[torch.Tensor, ...]:
    b, g = dist.shape
    dev = dist.device
    match = g_ids[None, :] == q_ids[:, None]
    if keep is not None:
        match &= keep
        dist = torch.where(keep, dist, torch.inf)  # excluded: behind every finite distance
    n_match = match.sum(dim=1)
    rows, cols = match.nonzero(as_tuple=True)
    d_match = dist[rows, cols]
    pos = torch.arange(g, device=dev)
    ranks = torch.empty(rows.numel(), dtype=torch.long, device=dev)
    step = max(1, (1 << 22) // max(g, 1))
    for s in range(0, rows.numel(), step):  # chunks of true matches, not a loop per query
        r, c, dj = rows[s : s + step], cols[s : s + step], d_match[s : s + step, None]
        d_rows = dist.index_select(0, r)
        ranks[s : s + step] = (d_rows < dj).sum(dim=1, dtype=torch.int32) + 1
        ties = d_rows == dj  # the match itself, and any exact tie
        if int(torch.count_nonzero(ties)) > r.numel():  # exact ties: earlier images first
            ranks[s : s + step] += (ties & (pos[None, :] < c[:, None])).sum(dim=1)
    # order each query's matches by rank (rows stay grouped): one small sort of the match list
    key, perm = torch.sort(rows * (g + 1) + ranks)
    distinct = None
    if cmc == "distinct":
        # the query's first true match j1 (smallest rank); the identities seen before it are
        # those with a kept image ordered before (d_j1, j1); count them with a one-hot product
        starts = n_match.cumsum(0) - n_match
        hit = (n_match > 0).nonzero().squeeze(1)
        first = perm[starts[hit]]
        d1 = torch.full((b,), float("-inf"), dtype=dist.dtype, device=dev)
        c1 = torch.zeros(b, dtype=torch.long, device=dev)
        d1[hit], c1[hit] = d_match[first], cols[first]
        ahead = dist < d1[:, None]
        ties = dist == d1[:, None]
        if int(torch.count_nonzero(ties)) > hit.numel():  # exact ties with the first match
            ahead |= ties & (pos[None, :] < c1[:, None])
        uniq, uid = torch.unique(g_ids, return_inverse=True)
        onehot = torch.zeros((g, uniq.numel()), dtype=torch.float32, device=dev)
        onehot[pos, uid] = 1.0
        distinct = ((ahead.to(torch.float32) @ onehot) > 0).sum(dim=1) + 1
    return _finish(b, key // (g + 1), key % (g + 1), n_match, distinct)


def _result(parts: list[tuple[torch.Tensor, ...]]) -> RetrievalResult:
    rank, ap, inp, valid = (torch.cat([p[i] for p in parts]).cpu().numpy() for i in range(4))
    return RetrievalResult(
        rank.astype(np.int64), ap.astype(np.float64), inp.astype(np.float64), valid.astype(bool)
    )


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
    method: str = "auto",
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
    if trials is None:
        subsets = [np.arange(n_gallery)]
    else:
        subsets = [np.asarray(t, np.int64).reshape(-1) for t in trials]
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
                dist_u[:, cols[t]],
                q_ids[sl],
                q_cams[sl],
                g_ids[t],
                g_cams[t],
                exclude,
                cmc,
                method,
            )
            parts[t].append(out)
    return [_result(p) for p in parts]


def evaluate_distances(
    dist: Any,
    query_ids: Any,
    query_cams: Any,
    gallery_ids: Any,
    gallery_cams: Any,
    exclude: Sequence[tuple[int, int]] = (),
    cmc: str = "distinct",
    device: str | torch.device | None = None,
    block_size: int | None = None,
    method: str = "auto",
) -> RetrievalResult:
    """Like :func:`evaluate` for one gallery, from a precomputed ``(Q, G)`` distance matrix
    (smaller is closer, finite)."""
    dev = torch.device(device) if device is not None else default_device()
    d = _as_tensor(dist, dev)
    if d.numel() and not (torch.isfinite(d.min()) and torch.isfinite(d.max())):
        raise ValueError("distances must be finite (no NaN or infinity)")
    q_ids = _as_tensor(np.asarray(query_ids, np.int64), dev)
    q_cams = _as_tensor(np.asarray(query_cams, np.int64), dev)
    g_ids = _as_tensor(np.asarray(gallery_ids, np.int64), dev)
    g_cams = _as_tensor(np.asarray(gallery_cams, np.int64), dev)
    step = block_size or max(1, min(d.shape[0], (1 << 22) // max(d.shape[1], 1)))
    parts = [
        rank_block(d[s : s + step], q_ids[s : s + step], q_cams[s : s + step], g_ids, g_cams,
                   exclude, cmc, method)
        for s in range(0, d.shape[0], step)
    ]  # fmt: skip
    return _result(parts)


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
