"""Vectorised ReID retrieval evaluation (CMC, mAP, mINP) and the ReID protocol base.

Definitions (the SYSU-MM01 authors' ``get_cmc_multi_cam.m`` / ``get_map_multi_cam.m``, and
mINP as in the AGW code, ``eval_metrics.py``, mangye16):

- Distance: cosine distance ``1 - <q, g>`` of L2-normalised features (a zero vector stays zero:
  distance 1 to everything).
- Ranking: the gallery sorted by distance with a **stable** sort, as MATLAB's ``sort``: equal
  distances keep the gallery order (the order of the npz; a trial gallery keeps the order of
  its index array, sorted by the SYSU protocols, so the candidate-gallery order).
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

How it is computed (torch, blocks of queries, no Python loop per query; on the GPU when there
is one). Distances are computed once per query block against the union of the trial galleries
(one matrix product for all trials). Two exact ranking methods give the numbers of a per-query
implementation (``tests/leaderboards/test_reid_eval.py`` checks both against one, ties
included; ``benchmarks/reid_eval_speed.py`` times them):

- ``"sort"``: per trial, one stable sort per query row, then integer passes over sorted rows.
- ``"compare"`` (chosen by ``method="auto"`` wherever it costs less: SYSU-MM01 single- and
  multi-shot, RegDB): no sort, all trials at once. Each trial gallery is laid out as a grid
  (identity x slot), so one gather gives a ``(queries, trials, identities, slots)`` block. The
  rank of a true match ``j`` is ``1 + #{kept k: (d_k, k) < (d_j, j)}`` (its place in a stable
  sort); the distinct-identity rank is ``1 + #{identities with a kept image before the first
  true match}``. The counts come from ``sign(x - d_j)`` summed over the row, on float32 copies
  of the distances: rounding to float32 is monotone, so ``f32(x) < f32(y)`` proves ``x < y``;
  a row in which a true match's float32 value equals another value's (a tie, or distances
  closer than float32 rounding) is recounted from the full-precision distances with the
  gallery-order rule, so the result is the full-precision ranking, exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol

RANKS = (1, 10, 20)
SORT_COST = 64
"""``method="auto"`` takes ``"compare"`` when its ``T * C * (U + 1) * C`` sign operations per
query (trials, grid slots, identities) are at most ``SORT_COST`` times the ``sum(G_t)`` images
that ``"sort"`` sorts (on a CPU a stable sort costs ~100 times one elementwise operation per
element), else ``"sort"`` (galleries with many images per identity)."""


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


# --------------------------------------------------------------------------------------------
# Galleries as columns of a query block's distance matrix
# --------------------------------------------------------------------------------------------
@dataclass
class _Galleries:
    """The galleries (trials) of one evaluation as columns of a ``(B, n_cols + 1)`` block of
    distances: ``n_cols`` columns (the union of the galleries) and column ``n_cols``, +inf,
    which stands for an absent image (grid padding, exclusion)."""

    n_cols: int
    cols: list[torch.Tensor]
    """Per gallery, the column of each of its images (gallery order)."""
    ids: list[np.ndarray]
    cams: list[np.ndarray]
    identities: np.ndarray
    """(U,) the identities of all galleries, sorted; grid row ``U`` is empty."""
    excluding: np.ndarray
    """(K - 1,) query cameras that have exclusions; class ``K - 1``: the other cameras."""
    grid: torch.Tensor
    """(K, T * (U + 1) * C) column of grid slot ``(t, u, c)`` for queries of class ``k``:
    gallery ``t``'s ``c``-th image (gallery order) of identity ``u``, or ``n_cols``."""
    pos: torch.Tensor
    """(T, U + 1, C) int32 place of the slot's image in its gallery (the tie order)."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.pos.shape)  # type: ignore[return-value]

    @classmethod
    def build(
        cls,
        cols: Sequence[np.ndarray],
        ids: Sequence[np.ndarray],
        cams: Sequence[np.ndarray],
        n_cols: int,
        exclude: Sequence[tuple[int, int]],
        dev: torch.device,
    ) -> _Galleries:
        identities = np.unique(np.concatenate(list(ids)))
        n_u = identities.size + 1
        placed, width = [], 1
        for g_ids in ids:
            u = np.searchsorted(identities, g_ids)
            counts = np.bincount(u, minlength=n_u)
            order = np.argsort(u, kind="stable")  # by identity, gallery order within
            slot = np.empty_like(order)
            slot[order] = np.arange(order.size) - (np.cumsum(counts) - counts)[u[order]]
            placed.append((u, slot))
            width = max(width, int(counts.max(initial=0)))
        grid = np.full((len(ids), n_u, width), n_cols, np.int64)
        grid_cam = np.zeros_like(grid)
        pos = np.full(grid.shape, np.iinfo(np.int32).max, np.int32)
        for t, (u, slot) in enumerate(placed):
            grid[t, u, slot] = cols[t]
            grid_cam[t, u, slot] = cams[t]
            pos[t, u, slot] = np.arange(u.size)
        excluding = np.unique(np.array([int(a) for a, _ in exclude], np.int64))
        grids = [
            np.where(np.isin(grid_cam, [int(b) for a, b in exclude if int(a) == q]), n_cols, grid)
            for q in excluding
        ]
        return cls(
            n_cols=n_cols,
            cols=[_as_tensor(np.asarray(c, np.int64), dev) for c in cols],
            ids=list(ids),
            cams=list(cams),
            identities=identities,
            excluding=excluding,
            grid=_as_tensor(np.stack([g.reshape(-1) for g in [*grids, grid]]), dev),
            pos=_as_tensor(pos, dev),
        )

    def query_class(self, q_cams: np.ndarray) -> np.ndarray:
        """(Q,) exclusion class of each query (index into ``grid``)."""
        k = np.searchsorted(self.excluding, q_cams).clip(max=max(self.excluding.size - 1, 0))
        hit = self.excluding[k] == q_cams if self.excluding.size else np.zeros(q_cams.shape, bool)
        return np.where(hit, k, self.excluding.size)

    def class_order(self, q_cams: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Queries sorted by exclusion class (stable), and each class's ``(start, end)`` in
        that order (class ``k`` is ``grid[k]``)."""
        cls = self.query_class(q_cams)
        order = np.argsort(cls, kind="stable")
        ends = np.cumsum(np.bincount(cls, minlength=self.excluding.size + 1))
        return order, [(int(a), int(b)) for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def query_row(self, q_ids: np.ndarray) -> np.ndarray:
        """(Q,) grid row of each query's identity (``U``: in no gallery)."""
        if not self.identities.size:
            return np.zeros(q_ids.shape, np.int64)
        u = np.searchsorted(self.identities, q_ids).clip(max=self.identities.size - 1)
        return np.where(self.identities[u] == q_ids, u, self.identities.size)


# --------------------------------------------------------------------------------------------
# Ranking a block of queries against all galleries
# --------------------------------------------------------------------------------------------
def _metrics(
    ranks: torch.Tensor, real: torch.Tensor, distinct: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """``(rank, ap, inp, valid)`` from the ranks ``(..., C)`` of the true matches, ascending,
    with ``real`` marking the slots that hold one."""
    f64 = torch.float64
    n = real.sum(dim=-1)
    valid = n > 0
    ordinal = torch.arange(1, ranks.shape[-1] + 1, device=ranks.device, dtype=f64)
    ranks_f = torch.where(real, ranks.to(f64), torch.inf)
    ap = (ordinal / ranks_f).sum(dim=-1) / n.clamp(min=1).to(f64)
    last = ranks_f.gather(-1, (n - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    inp = n.to(f64) / last
    rank = (ranks[..., 0] if distinct is None else distinct).long()
    nan = torch.full_like(ap, float("nan"))
    return (
        torch.where(valid, rank, torch.zeros_like(rank)),
        torch.where(valid, ap, nan),
        torch.where(valid, inp, nan),
        valid,
    )


def _any_last(mask: torch.Tensor) -> torch.Tensor:
    """``mask.any(-1)``, by reading a last dimension of 2, 4 or 8 bools as one integer."""
    width = mask.shape[-1]
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}.get(width)
    *outer, last = mask.stride()
    if as_int is not None and last == 1 and all(s % width == 0 for s in outer):
        return mask.view(as_int).squeeze(-1) != 0
    return mask.any(dim=-1)


class _Work(dict):
    """Reusable buffers of the ranking passes (fresh large tensors cost page faults)."""

    def buf(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, dev: torch.device):
        t = self.get(name)
        if t is None or t.shape[0] < shape[0] or t.shape[1:] != shape[1:] or t.dtype != dtype:
            t = self[name] = torch.empty(shape, dtype=dtype, device=dev)
        return t[: shape[0]]


def _rank_grid(
    d: torch.Tensor,
    grid: torch.Tensor,
    pos: torch.Tensor,
    rows: torch.Tensor,
    cmc: str,
    work: _Work,
) -> tuple[torch.Tensor, ...]:
    """The ``"compare"`` method (module docstring) for a block ``d`` ``(B, n_cols + 1)`` of
    queries whose identities are grid rows ``rows``; each result is ``(B, T)``."""
    n_t, n_u, width = pos.shape
    b, span, dev = d.shape[0], n_u * width, d.device
    grid3 = grid.view(n_t, n_u, width)
    # the true matches of each query in each gallery, ascending by (distance, gallery order):
    # the slots of a row are in gallery order, so a stable sort on the distance does it
    own = d.gather(1, grid3[:, rows].permute(1, 0, 2).reshape(b, -1)).view(b, n_t, width)
    own, perm = torch.sort(own, dim=-1, stable=True)
    own_pos = pos[:, rows].permute(1, 0, 2).gather(-1, perm)
    real = torch.isfinite(own)
    f32 = torch.float32
    x = work.buf("x", (b, n_t * span), f32, dev)
    torch.index_select(d.to(f32), 1, grid, out=x)
    th = torch.where(real, own.to(f32), -torch.inf).unsqueeze(-1)
    # sign(x - t) is exact: -1 iff x < t, 0 iff x == t (in float32); from its sum and the sum
    # of its absolute value: #below and #equal per true match, in cheap arithmetic passes
    s = work.buf("s", (b, n_t, width, span), f32, dev)
    torch.sub(x.view(b, n_t, 1, span), th, out=s).sign_()
    distinct = None
    if cmc == "distinct":  # identities with an image proven ahead of the first true match
        seen = _any_last((s[:, :, 0] < 0).view(b, n_t, n_u, width))
        distinct = seen.sum(dim=-1, dtype=torch.int32) + 1
    net = s.sum(dim=-1)  # #above - #below
    both = s.abs_().sum(dim=-1)  # #above + #below
    rank = ((both - net) * 0.5).to(torch.int32) + 1
    unsure = real & (both != span - 1)  # another value equal to the match's in float32
    redo = unsure.any(dim=-1).nonzero(as_tuple=True)
    if redo[0].numel():  # float32 could not tell: recount those rows at full precision
        bi, ti = redo
        xr = d[bi].gather(1, grid3.view(n_t, span)[ti]).unsqueeze(1)
        tr, pr = own[bi, ti].unsqueeze(-1), own_pos[bi, ti].unsqueeze(-1)
        before = (xr < tr) | ((xr == tr) & (pos.view(n_t, 1, span)[ti] < pr))
        rank[bi, ti] = before.sum(dim=-1, dtype=torch.int32) + 1
        if distinct is not None:
            seen_r = before[:, 0].view(-1, n_u, width).any(dim=-1)
            distinct[bi, ti] = seen_r.sum(dim=-1, dtype=torch.int32) + 1
    return _metrics(rank, real, distinct)


def _rank_sorted(
    dist: torch.Tensor,
    q_ids: torch.Tensor,
    g_ids: torch.Tensor,
    keep: torch.Tensor | None,
    cmc: str,
) -> tuple[torch.Tensor, ...]:
    """The ``"sort"`` method for one gallery: ``dist`` ``(B, G)``; results ``(B,)``."""
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
    # the true-match ranks as (B, max matches), ascending, padded
    width = max(int(n_match.max()) if b else 0, 1)
    slot = torch.arange(rows.numel(), device=dev) - (n_match.cumsum(0) - n_match)[rows]
    grid = torch.zeros((b, width), dtype=torch.long, device=dev)
    grid[rows, slot] = ranks
    real = torch.arange(width, device=dev)[None, :] < n_match[:, None]
    return _metrics(grid, real, distinct)


@contextmanager
def _cpu_threads(dev: torch.device, n: int) -> Iterator[None]:
    """Run on ``n`` intra-op CPU threads, then restore the count. The evaluation runs on one
    thread except the matrix product: it is many short memory-bound operations, and with
    several threads each one ends at a barrier, which on a busy machine waits for a descheduled
    thread (measured on a loaded 2-core machine, 2 threads: every parallel operation cost ~8
    ms, the SYSU-sized ranking 4.9 s instead of 0.065 s)."""
    old = torch.get_num_threads()
    if dev.type != "cpu" or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _evaluate(
    block_fn: Callable[[np.ndarray, int], torch.Tensor],
    q_ids: np.ndarray,
    q_cams: np.ndarray,
    gal: _Galleries,
    exclude: Sequence[tuple[int, int]],
    cmc: str,
    method: str,
    block_size: int | None,
    big_blocks: bool = True,
) -> list[RetrievalResult]:
    """Rank every query against every gallery, in blocks of queries of one exclusion class.
    ``block_fn(index, start)`` gives the ``(B, n_cols + 1)`` distances (last column +inf) of the
    queries ``index``, which are rows ``start:start + B`` of the queries in the order of
    :meth:`_Galleries.class_order`. ``big_blocks``: ask for large blocks (a matrix product is
    most efficient on them), else blocks of the cache-sized ranking passes."""
    if cmc not in ("distinct", "image"):
        raise ValueError(f"cmc must be 'distinct' or 'image', got {cmc!r}")
    if method not in ("auto", "sort", "compare"):
        raise ValueError(f"method must be 'auto', 'sort' or 'compare', got {method!r}")
    n_t, n_u, width = gal.shape
    if method == "auto":
        compare = n_t * width * n_u * width
        method = "compare" if compare <= SORT_COST * sum(c.numel() for c in gal.cols) else "sort"
    dev = gal.grid.device
    n_q = q_ids.shape[0]
    out = [
        torch.zeros((n_q, n_t), dtype=dt, device=dev)
        for dt in (torch.long, torch.float64, torch.float64, torch.bool)
    ]
    rows = gal.query_row(q_ids)
    cache = (1 << 20) if dev.type == "cpu" else (1 << 26)  # elements per "compare" pass
    sub = max(1, cache // (n_t * width * n_u * width))  # queries per "compare" pass
    big = max(1, (1 << 23) // (gal.n_cols + 1))
    step = block_size or (big if big_blocks or method == "sort" else sub)
    work = _Work()
    order, bounds = gal.class_order(q_cams)
    for k, (lo, hi) in enumerate(bounds):
        for start in range(lo, hi, step):
            idx = order[start : min(start + step, hi)]
            d = block_fn(idx, start)
            res = _rank_block(d, idx, k, q_ids, rows, gal, exclude, cmc, method, sub, work)
            at = _as_tensor(idx, dev)
            for o, v in zip(out, res, strict=True):
                o[at] = v.to(o.dtype)
    rank, ap, inp, valid = (o.T.cpu().numpy() for o in out)
    return [
        RetrievalResult(rank[t].astype(np.int64), ap[t], inp[t], valid[t].astype(bool))
        for t in range(n_t)
    ]


def _rank_block(
    d: torch.Tensor,
    idx: np.ndarray,
    k: int,
    q_ids: np.ndarray,
    rows: np.ndarray,
    gal: _Galleries,
    exclude: Sequence[tuple[int, int]],
    cmc: str,
    method: str,
    sub: int,
    work: _Work,
) -> list[torch.Tensor]:
    """``(rank, ap, inp, valid)``, each ``(B, T)``, of the queries ``idx`` (class ``k``)."""
    dev, n_t = d.device, len(gal.cols)
    if method == "compare":
        r = _as_tensor(rows[idx], dev)
        parts = [
            _rank_grid(d[s : s + sub], gal.grid[k], gal.pos, r[s : s + sub], cmc, work)
            for s in range(0, idx.size, sub)
        ]
        return [torch.cat([p[i] for p in parts]) for i in range(4)]
    q = _as_tensor(q_ids[idx], dev)
    cam = gal.excluding[k] if k < gal.excluding.size else None
    dropped = [b for a, b in exclude if a == cam]
    per = []
    for t in range(n_t):
        drop = np.isin(gal.cams[t], dropped)
        keep = None if not drop.any() else _as_tensor(~drop, dev).expand(idx.size, -1)
        g_ids = _as_tensor(gal.ids[t], dev)
        per.append(_rank_sorted(d[:, gal.cols[t]], q, g_ids, keep, cmc))
    return [torch.stack([p[i] for p in per], dim=1) for i in range(4)]


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
    implementation; float32 is faster and differs only for distances within ~1e-7).
    ``method``: ``"sort"``, ``"compare"`` or ``"auto"`` (module docstring); all give the same
    numbers."""
    dev = torch.device(device) if device is not None else default_device()
    threads = torch.get_num_threads()  # for the matrix product; the rest: one
    with _cpu_threads(dev, 1):
        g_ids_all = np.asarray(gallery_ids, np.int64).reshape(-1)
        g_cams_all = np.asarray(gallery_cams, np.int64).reshape(-1)
        if trials is None:
            subsets = [np.arange(g_ids_all.shape[0])]
        else:
            subsets = [np.asarray(t, np.int64).reshape(-1) for t in trials]
        if not subsets:
            return []
        union = np.unique(np.concatenate(subsets))
        gal = _Galleries.build(
            [np.searchsorted(union, s) for s in subsets],
            [g_ids_all[s] for s in subsets],
            [g_cams_all[s] for s in subsets],
            union.size,
            exclude,
            dev,
        )
        q_ids = np.asarray(query_ids, np.int64).reshape(-1)
        q_cams = np.asarray(query_cams, np.int64).reshape(-1)
        order, _ = gal.class_order(q_cams)
        # unit features in float64 (or dtype), queries in class order, plus a zero gallery row for
        # the "absent" column; only the gallery images some trial holds
        q_feat, g_feat = _as_tensor(query_feat, dev), _as_tensor(gallery_feat, dev)
        qf = _unit(q_feat, order, torch.empty(q_feat.shape, dtype=dtype, device=dev))
        gf = torch.empty((union.size + 1, g_feat.shape[1]), dtype=dtype, device=dev)
        _unit(g_feat, union, gf[:-1])
        gf[-1] = 0.0

        def block(idx: np.ndarray, start: int) -> torch.Tensor:
            with _cpu_threads(dev, threads):
                sim = qf[start : start + idx.size] @ gf.T
            d = sim.neg_().add_(1.0)  # rounded as 1 - s
            d[:, -1] = torch.inf
            return d

        return _evaluate(block, q_ids, q_cams, gal, exclude, cmc, method, block_size)


def _unit(feat: torch.Tensor, rows: np.ndarray, out: torch.Tensor) -> torch.Tensor:
    """``out`` = ``feat[rows]`` L2-normalised as ``torch.nn.functional.normalize`` does it."""
    if rows.size == feat.shape[0] and np.array_equal(rows, np.arange(rows.size)):
        out.copy_(feat)
    else:
        out.copy_(feat[_as_tensor(rows, feat.device)])
    return out.div_(torch.linalg.vector_norm(out, dim=1, keepdim=True).clamp_min_(1e-12))


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
    (res,) = evaluate_trial_distances(
        [dist], query_ids, query_cams, [gallery_ids], [gallery_cams],
        exclude, cmc, device, block_size, method,
    )  # fmt: skip
    return res


def evaluate_trial_distances(
    dists: Sequence[Any],
    query_ids: Any,
    query_cams: Any,
    gallery_ids: Sequence[Any],
    gallery_cams: Sequence[Any],
    exclude: Sequence[tuple[int, int]] = (),
    cmc: str = "distinct",
    device: str | torch.device | None = None,
    block_size: int | None = None,
    method: str = "auto",
) -> list[RetrievalResult]:
    """Like :func:`evaluate` for several galleries (trials) at once, from one precomputed
    ``(Q, G_t)`` distance matrix per gallery (smaller is closer, finite), each with its
    ``gallery_ids[t]`` and ``gallery_cams[t]``."""
    dev = torch.device(device) if device is not None else default_device()
    with _cpu_threads(dev, 1):
        ds = [_as_tensor(x, dev) for x in dists]
        for t, d in enumerate(ds):
            if d.numel() and not all(torch.isfinite(v) for v in torch.aminmax(d)):
                raise ValueError(f"distances of gallery {t}: must be finite (no NaN or infinity)")
        g_ids = [np.asarray(g, np.int64).reshape(-1) for g in gallery_ids]
        g_cams = [np.asarray(g, np.int64).reshape(-1) for g in gallery_cams]
        for t, (d, i, c) in enumerate(zip(ds, g_ids, g_cams, strict=True)):
            if d.dim() != 2 or d.shape[1] != i.size or c.size != i.size:
                raise ValueError(
                    f"gallery {t}: distances {tuple(d.shape)} do not match {i.size} gallery "
                    f"ids and {c.size} cameras"
                )
        ends = np.cumsum([i.size for i in g_ids])
        cols = [np.arange(e - i.size, e) for e, i in zip(ends, g_ids, strict=True)]
        gal = _Galleries.build(cols, g_ids, g_cams, int(ends[-1]), exclude, dev)

        def block(idx: np.ndarray, start: int) -> torch.Tensor:
            at = _as_tensor(idx, dev)
            out = torch.empty((idx.size, gal.n_cols + 1), dtype=ds[0].dtype, device=dev)
            for d, c in zip(ds, cols, strict=True):
                out[:, c[0] : c[-1] + 1] = d.index_select(0, at)
            out[:, -1] = torch.inf
            return out

        q_ids = np.asarray(query_ids, np.int64).reshape(-1)
        q_cams = np.asarray(query_cams, np.int64).reshape(-1)
        return _evaluate(block, q_ids, q_cams, gal, exclude, cmc, method, block_size, False)


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
    metric_class: ClassVar[str] = "mv2d_bench.leaderboards.metrics.items:ItemsMetric"
    """Cat states of every query and gallery item with its dataset index (``metrics.items``);
    ``compute()`` runs :meth:`score_split`, the exact engine, on the gathered split."""
    dataset_index_keys: ClassVar[dict[str, str]] = {
        "query": "query_dataset_index",
        "gallery": "gallery_dataset_index",
    }

    def __init__(
        self,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float64,
        block_size: int | None = None,
    ) -> None:
        self.device = device
        """Where the ranking runs (None: where the features are; see :meth:`engine_device`)."""
        self.dtype = dtype
        self.block_size = block_size

    def validate_inputs(self, arrays: dict[str, np.ndarray]) -> None:
        self.check_arrays(**{k: arrays[k] for k in self.npz_keys})

    def check_arrays(self, **arrays: Any) -> dict[str, Any]:
        """Validate shapes and types. Features stay as given (a tensor stays on its device;
        anything else becomes a NumPy array); ids and cams become int64 NumPy arrays."""
        out: dict[str, Any] = {}
        for side in ("query", "gallery"):
            feat = arrays[f"{side}_feat"]
            if not isinstance(feat, torch.Tensor):
                feat = np.asarray(feat)
            numeric = (
                not (feat.dtype.is_complex or feat.dtype == torch.bool)
                if isinstance(feat, torch.Tensor)
                else np.issubdtype(feat.dtype, np.number)
            )
            if feat.ndim != 2 or not numeric:
                raise ValueError(
                    f"key {side}_feat: expected a 2-D float array (items x dims), got "
                    f"{feat.dtype} {tuple(feat.shape)}"
                )
            finite = (
                bool(torch.isfinite(feat).all())
                if isinstance(feat, torch.Tensor)
                else np.isfinite(feat).all()
            )
            if not finite:
                raise ValueError(f"key {side}_feat: holds NaN or infinite values")
            out[f"{side}_feat"] = feat
            for what in ("ids", "cams"):
                key = f"{side}_{what}"
                value = arrays[key]
                arr = value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
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

    def engine_device(self, arrays: dict[str, Any]) -> torch.device:
        """Where the ranking runs: the protocol's ``device`` when one was given, else the
        device of the features (NumPy: the CPU). The protocol never picks one itself."""
        if self.device is not None:
            return torch.device(self.device)
        feat = arrays["query_feat"]
        return feat.device if isinstance(feat, torch.Tensor) else torch.device("cpu")
