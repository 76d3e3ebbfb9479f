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
  first true-match image. Rank-k is the percentage of valid queries with rank <= k (k = 1, 5,
  10, 20, the ranks the official evaluation prints). With ``cmc="distinct"`` the image-level
  CMC is reported beside it as ``rank-k-image`` (from the same ranking), so that numbers can be
  compared with evaluators that use either.
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

The products (``product=``): ``"float64"`` (the default on the CPU) computes the cosine
similarities in float64. ``"float32"`` (the default on CUDA, where float64 is slow on most
GPUs; ``"compare"`` method only, otherwise float64 is used) computes them with float32 matrix
products over chunks of :data:`CHUNK` feature dimensions, summed in float64, TF32 off. For unit
vectors the error of such a value against the float64 product is at most :func:`product_error`
(~4e-6, from the float32 rounding of the inputs and the worst-case rounding of any summation of
64 products); a (query, trial) row in which some other distance lies within twice that of a
true match's is recounted from float64 products of that query, so the metrics are the float64
path's (``tests/leaderboards/test_reid_eval.py`` checks both on near-ties and exact duplicates).
One limit, shared by every float64 evaluator: two float64 distances of a query that differ only
in their last bits (~1e-16) may compare differently when the products are computed for another
number of query rows (BLAS kernels round differently), as with the float64 path's block size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol

RANKS = (1, 5, 10, 20)
"""The CMC ranks reported (the dataset authors' evaluation prints rank 1, 5, 10 and 20)."""
CHUNK = 64
"""Feature dimensions per float32 partial product (``product="float32"``)."""
SORT_COST = 64
"""``method="auto"`` takes ``"compare"`` when its ``T * C * (U + 1) * C`` sign operations per
query (trials, grid slots, identities) are at most ``SORT_COST`` times the ``sum(G_t)`` images
that ``"sort"`` sorts (on a CPU a stable sort costs ~100 times one elementwise operation per
element), else ``"sort"`` (galleries with many images per identity)."""


@dataclass
class RetrievalResult:
    """Per-query results of one gallery (one trial)."""

    rank: np.ndarray
    """(Q,) int64: the query's CMC rank (1-based; 0 for an invalid query): of its identity among
    the distinct ranked identities (``cmc="distinct"``) or of its first true-match image."""
    rank_image: np.ndarray
    """(Q,) int64: the rank of the query's first true-match image (0 for an invalid query)."""
    ap: np.ndarray
    """(Q,) float64 average precision (nan for an invalid query)."""
    inp: np.ndarray
    """(Q,) float64 inverse negative penalty (nan for an invalid query)."""
    valid: np.ndarray
    """(Q,) bool: a true match was left after exclusion."""
    cmc_kind: str = "distinct"
    """How :attr:`rank` is counted: ``"distinct"`` identities or ``"image"``."""

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    def cmc(self, max_rank: int = 20, image: bool = False) -> np.ndarray:
        """(max_rank,) fraction of valid queries ranked within 1..k (``image``: by the rank of
        the first true-match image, whatever :attr:`cmc_kind` is)."""
        r = (self.rank_image if image else self.rank)[self.valid]
        if r.size == 0:
            return np.full(max_rank, np.nan)
        return (r[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(axis=0)

    def metrics(self, ranks: Sequence[int] = RANKS) -> dict[str, float]:
        """``rank-k``, ``mAP`` and ``mINP`` in percent over the valid queries, and for a
        distinct-identity CMC also the image-level ``rank-k-image``."""
        if self.num_valid == 0:
            raise ValueError(
                "no query has a true match in the gallery (after exclusions): nothing to score"
            )
        cmc = self.cmc(max(ranks))
        out = {f"rank-{k}": float(100.0 * cmc[k - 1]) for k in ranks}
        out["mAP"] = float(100.0 * self.ap[self.valid].mean())
        out["mINP"] = float(100.0 * self.inp[self.valid].mean())
        if self.cmc_kind == "distinct":
            img = self.cmc(max(ranks), image=True)
            out.update({f"rank-{k}-image": float(100.0 * img[k - 1]) for k in ranks})
        return out


def tensor_device(*arrays: Any) -> torch.device:
    """The device of the first torch tensor among ``arrays`` (NumPy arrays live on the CPU):
    the evaluation follows the data it is given and never picks a device itself."""
    for a in arrays:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cpu")


def product_error(dim: int) -> float:
    """An upper bound on ``|s32 - s64|`` for unit vectors of ``dim`` dimensions, ``s64`` the
    float64 product and ``s32`` the ``product="float32"`` one: float32 rounding of both inputs
    (``2u + u^2`` relative), any order of summation of one chunk of :data:`CHUNK` products
    (``gamma_CHUNK``, FMA or not), and float64 rounding of the chunk sum and of the float64
    product (``gamma`` of the chunk count and of ``dim`` in float64), each times
    ``sum |q_i g_i| <= |q| |g| <= 1``; then 1 % on top."""
    u32, u64 = 2.0**-24, 2.0**-53

    def gamma(n: int, u: float) -> float:
        return n * u / (1.0 - n * u)

    chunks = max(1, -(-dim // CHUNK))
    c = gamma(CHUNK, u32) * (1 + 2 * u32 + u32**2) + 2 * u32 + u32**2
    c += gamma(chunks, u64) * (1 + c) + gamma(dim, u64)
    return 1.01 * c * (1 + 1e-12)


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
    """``(rank, rank_image, ap, inp, valid)`` from the ranks ``(..., C)`` of the true matches,
    ascending, with ``real`` marking the slots that hold one."""
    f64 = torch.float64
    n = real.sum(dim=-1)
    valid = n > 0
    ordinal = torch.arange(1, ranks.shape[-1] + 1, device=ranks.device, dtype=f64)
    ranks_f = torch.where(real, ranks.to(f64), torch.inf)
    ap = (ordinal / ranks_f).sum(dim=-1) / n.clamp(min=1).to(f64)
    last = ranks_f.gather(-1, (n - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    inp = n.to(f64) / last
    first = ranks[..., 0].long()
    rank = first if distinct is None else distinct.long()
    nan = torch.full_like(ap, float("nan"))
    return (
        torch.where(valid, rank, torch.zeros_like(rank)),
        torch.where(valid, first, torch.zeros_like(first)),
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
    exact: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tol: float = 0.0,
) -> tuple[torch.Tensor, ...]:
    """The ``"compare"`` method (module docstring) for a block ``d`` ``(B, n_cols + 1)`` of
    queries whose identities are grid rows ``rows``; each result is ``(B, T)``.

    ``d`` is exact (float64 products) when ``exact`` is None. Otherwise ``d`` is within
    ``tol / 2`` of the float64 distances (``product="float32"``) and ``exact(rows)`` gives the
    float64 distances of some of the block's queries: a (query, trial) row where another value
    lies within ``tol`` of a true match's is recounted from them."""
    n_t, n_u, width = pos.shape
    b, span, dev = d.shape[0], n_u * width, d.device
    grid3 = grid.view(n_t, n_u, width)
    # the true matches of each query in each gallery, ascending by (distance, gallery order):
    # the slots of a row are in gallery order, so a stable sort on the distance does it
    own = d.gather(1, grid3[:, rows].permute(1, 0, 2).reshape(b, -1)).view(b, n_t, width)
    own = torch.sort(own, dim=-1, stable=True).values
    real = torch.isfinite(own)
    f32 = torch.float32
    x = work.buf("x", (b, n_t * span), f32, dev)
    torch.index_select(d.to(f32), 1, grid, out=x)
    th = torch.where(real, own.to(f32), -torch.inf).unsqueeze(-1)
    # sign(x - t) is exact: -1 iff x < t, 0 iff x == t (in float32); from its sum and the sum
    # of its absolute value: #below and #equal per true match, in cheap arithmetic passes
    s = work.buf("s", (b, n_t, width, span), f32, dev)
    torch.sub(x.view(b, n_t, 1, span), th, out=s)
    if exact is not None:
        # float32 rounding of both sides adds at most 2 x 2^-23 for distances <= 2
        near = (s.abs() <= tol + 2.0**-21).sum(dim=-1)
    s.sign_()
    distinct = None
    if cmc == "distinct":  # identities with an image proven ahead of the first true match
        seen = _any_last((s[:, :, 0] < 0).view(b, n_t, n_u, width))
        distinct = seen.sum(dim=-1, dtype=torch.int32) + 1
    net = s.sum(dim=-1)  # #above - #below
    both = s.abs_().sum(dim=-1)  # #above + #below
    rank = ((both - net) * 0.5).to(torch.int32) + 1
    if exact is None:
        unsure = real & (both != span - 1)  # another value equal to the match's in float32
    else:
        unsure = real & (near > 1)  # another value within the products' error of the match's
    redo = unsure.any(dim=-1).nonzero(as_tuple=True)
    if redo[0].numel():  # float32 could not tell: recount those rows at full precision
        bi, ti = redo
        if exact is None:
            dex = d[bi]
        else:
            uniq, inv = torch.unique(bi, return_inverse=True)
            dex = exact(uniq)[inv]
        r_rank, r_distinct = _recount(dex, grid3[ti], pos[ti], rows[bi], cmc)
        rank[bi, ti] = r_rank
        if distinct is not None:
            distinct[bi, ti] = r_distinct
    return _metrics(rank, real, distinct)


def _recount(
    dex: torch.Tensor, grid3: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor, cmc: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Ranks of the true matches (ascending) and the distinct-identity rank, for ``n`` (query,
    trial) rows from full-precision distances ``dex`` ``(n, n_cols + 1)``, each row's trial grid
    ``grid3`` ``(n, U + 1, C)`` and slot order ``pos`` and its identity's grid row ``rows``."""
    n, n_u, width = grid3.shape
    ar = torch.arange(n, device=dex.device)
    own = dex.gather(1, grid3[ar, rows])  # (n, C), in gallery order
    own, perm = torch.sort(own, dim=-1, stable=True)
    own_pos = pos[ar, rows].gather(-1, perm)
    xr = dex.gather(1, grid3.reshape(n, -1)).unsqueeze(1)  # (n, 1, span)
    tr, pr = own.unsqueeze(-1), own_pos.unsqueeze(-1)
    before = (xr < tr) | ((xr == tr) & (pos.reshape(n, 1, -1) < pr))
    rank = before.sum(dim=-1, dtype=torch.int32) + 1
    distinct = None
    if cmc == "distinct":
        seen = before[:, 0].view(n, n_u, width).any(dim=-1)
        distinct = seen.sum(dim=-1, dtype=torch.int32) + 1
    return rank, distinct


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


def resolve_method(gal: _Galleries, method: str) -> str:
    """``"sort"`` or ``"compare"`` for ``method`` (``"auto"``: by operation count)."""
    if method not in ("auto", "sort", "compare"):
        raise ValueError(f"method must be 'auto', 'sort' or 'compare', got {method!r}")
    if method != "auto":
        return method
    n_t, n_u, width = gal.shape
    compare = n_t * width * n_u * width
    return "compare" if compare <= SORT_COST * sum(c.numel() for c in gal.cols) else "sort"


BlockFn = Callable[[np.ndarray, int], tuple[torch.Tensor, Callable | None]]


def _evaluate(
    block_fn: BlockFn,
    q_ids: np.ndarray,
    q_cams: np.ndarray,
    gal: _Galleries,
    exclude: Sequence[tuple[int, int]],
    cmc: str,
    method: str,
    block_size: int | None,
    big_blocks: bool = True,
    tol: float = 0.0,
) -> list[RetrievalResult]:
    """Rank every query against every gallery, in blocks of queries of one exclusion class.
    ``block_fn(index, start)`` gives the ``(B, n_cols + 1)`` distances (last column +inf) of the
    queries ``index``, which are rows ``start:start + B`` of the queries in the order of
    :meth:`_Galleries.class_order`, and None, or (``product="float32"``, distances within
    ``tol / 2``) a function of block rows giving their float64 distances. ``big_blocks``: ask
    for large blocks (a matrix product is most efficient on them), else blocks of the
    cache-sized ranking passes."""
    if cmc not in ("distinct", "image"):
        raise ValueError(f"cmc must be 'distinct' or 'image', got {cmc!r}")
    method = resolve_method(gal, method)
    n_t, n_u, width = gal.shape
    dev = gal.grid.device
    n_q = q_ids.shape[0]
    out = [
        torch.zeros((n_q, n_t), dtype=dt, device=dev)
        for dt in (torch.long, torch.long, torch.float64, torch.float64, torch.bool)
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
            d, exact = block_fn(idx, start)
            res = _rank_block(
                d, idx, k, q_ids, rows, gal, exclude, cmc, method, sub, work, exact, tol
            )
            at = _as_tensor(idx, dev)
            for o, v in zip(out, res, strict=True):
                o[at] = v.to(o.dtype)
    rank, rank_image, ap, inp, valid = (o.T.cpu().numpy() for o in out)
    return [
        RetrievalResult(
            rank[t].astype(np.int64),
            rank_image[t].astype(np.int64),
            ap[t],
            inp[t],
            valid[t].astype(bool),
            cmc,
        )
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
    exact: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tol: float = 0.0,
) -> list[torch.Tensor]:
    """``(rank, rank_image, ap, inp, valid)``, each ``(B, T)``, of the queries ``idx`` (class
    ``k``)."""
    dev, n_t = d.device, len(gal.cols)
    if method == "compare":
        r = _as_tensor(rows[idx], dev)
        parts = []
        for s in range(0, idx.size, sub):
            ex = None if exact is None else (lambda local, s=s: exact(local + s))
            parts.append(
                _rank_grid(d[s : s + sub], gal.grid[k], gal.pos, r[s : s + sub], cmc, work, ex, tol)
            )
        return [torch.cat([p[i] for p in parts]) for i in range(5)]
    if exact is not None:
        raise ValueError("the 'sort' method needs float64 distances (product='float64')")
    q = _as_tensor(q_ids[idx], dev)
    cam = gal.excluding[k] if k < gal.excluding.size else None
    dropped = [b for a, b in exclude if a == cam]
    per = []
    for t in range(n_t):
        drop = np.isin(gal.cams[t], dropped)
        keep = None if not drop.any() else _as_tensor(~drop, dev).expand(idx.size, -1)
        g_ids = _as_tensor(gal.ids[t], dev)
        per.append(_rank_sorted(d[:, gal.cols[t]], q, g_ids, keep, cmc))
    return [torch.stack([p[i] for p in per], dim=1) for i in range(5)]


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
    block_size: int | None = None,
    method: str = "auto",
    product: str = "auto",
) -> list[RetrievalResult]:
    """Score queries against one gallery, or against each trial's gallery.

    ``trials``: a list of index arrays into the gallery (one per trial; None: the whole gallery
    once); a trial gallery keeps the order of its index array (the tie order). The result list
    has one :class:`RetrievalResult` per trial. ``device``: where to compute (None: where
    ``query_feat`` is, the CPU for NumPy arrays). ``method``: ``"sort"``, ``"compare"`` or
    ``"auto"``; ``product``: ``"float64"``, ``"float32"`` or ``"auto"`` (float32 on CUDA);
    see the module docstring. Every choice gives the same numbers."""
    dev = torch.device(device) if device is not None else tensor_device(query_feat)
    if product not in ("auto", "float64", "float32"):
        raise ValueError(f"product must be 'auto', 'float64' or 'float32', got {product!r}")
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
        method = resolve_method(gal, method)
        if product == "auto":
            product = "float32" if dev.type == "cuda" else "float64"
        if method != "compare":
            product = "float64"  # the sort method ranks float64 distances only
        q_ids = np.asarray(query_ids, np.int64).reshape(-1)
        q_cams = np.asarray(query_cams, np.int64).reshape(-1)
        order, _ = gal.class_order(q_cams)
        # unit features in float64, queries in class order, plus a zero gallery row for the
        # "absent" column; only the gallery images some trial holds
        f64 = torch.float64
        q_feat, g_feat = _as_tensor(query_feat, dev), _as_tensor(gallery_feat, dev)
        qf = _unit(q_feat, order, torch.empty(q_feat.shape, dtype=f64, device=dev))
        gf = torch.empty((union.size + 1, g_feat.shape[1]), dtype=f64, device=dev)
        _unit(g_feat, union, gf[:-1])
        gf[-1] = 0.0

        def exact_rows(rows: torch.Tensor) -> torch.Tensor:
            with _cpu_threads(dev, threads):
                sim = qf[rows] @ gf.T
            d = sim.neg_().add_(1.0)  # rounded as 1 - s
            d[:, -1] = torch.inf
            return d

        if product == "float64":

            def block(idx: np.ndarray, start: int):
                with _cpu_threads(dev, threads):
                    sim = qf[start : start + idx.size] @ gf.T
                d = sim.neg_().add_(1.0)  # rounded as 1 - s
                d[:, -1] = torch.inf
                return d, None

            return _evaluate(block, q_ids, q_cams, gal, exclude, cmc, method, block_size)

        chunked = _Float32Product(qf, gf, dev, threads)

        def block32(idx: np.ndarray, start: int):
            d = chunked.distances(start, idx.size)
            return d, (lambda local, start=start: exact_rows(local + start))

        tol = 2.0 * (product_error(qf.shape[1]) + 2.0**-50)
        return _evaluate(block32, q_ids, q_cams, gal, exclude, cmc, method, block_size, tol=tol)


class _Float32Product:
    """Cosine distances from float32 products over chunks of :data:`CHUNK` dimensions, summed
    in float64 (``product="float32"``), TF32 off; within :func:`product_error` + 2^-50 of the
    float64 path's distances for unit vectors."""

    def __init__(self, qf: torch.Tensor, gf: torch.Tensor, dev: torch.device, threads: int):
        dim = qf.shape[1]
        self.chunks = max(1, -(-dim // CHUNK))
        pad = self.chunks * CHUNK - dim
        q = torch.nn.functional.pad(qf.to(torch.float32), (0, pad))
        g = torch.nn.functional.pad(gf.to(torch.float32), (0, pad))
        self.q = q.view(q.shape[0], self.chunks, CHUNK).transpose(0, 1)  # (K, Q, CHUNK)
        self.g = g.view(g.shape[0], self.chunks, CHUNK).permute(1, 2, 0).contiguous()
        self.dev, self.threads = dev, threads
        budget = (1 << 25) if dev.type == "cuda" else (1 << 22)  # float32 partial products
        self.rows = max(1, budget // (self.chunks * g.shape[0]))

    def distances(self, start: int, n: int) -> torch.Tensor:
        out = torch.empty((n, self.g.shape[2]), dtype=torch.float64, device=self.dev)
        with _cpu_threads(self.dev, self.threads), _ieee_float32():
            for a in range(0, n, self.rows):
                b = min(a + self.rows, n)
                part = torch.bmm(self.q[:, start + a : start + b], self.g)
                torch.sum(part, dim=0, dtype=torch.float64, out=out[a:b])
        d = out.neg_().add_(1.0)
        d[:, -1] = torch.inf
        return d


@contextmanager
def _ieee_float32() -> Iterator[None]:
    """Float32 matrix products in IEEE float32 (no TF32) while inside, then the old setting."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        old = matmul.fp32_precision
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = old
        return
    old_tf32 = matmul.allow_tf32  # pragma: no cover - torch without fp32_precision
    matmul.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32 = old_tf32


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
    dev = torch.device(device) if device is not None else tensor_device(*dists)
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

        def block(idx: np.ndarray, start: int):
            at = _as_tensor(idx, dev)
            out = torch.empty((idx.size, gal.n_cols + 1), dtype=ds[0].dtype, device=dev)
            for d, c in zip(ds, cols, strict=True):
                out[:, c[0] : c[-1] + 1] = d.index_select(0, at)
            out[:, -1] = torch.inf
            return out, None

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
    Metric("rank-5", description="CMC rank-5"),
    Metric("rank-10", description="CMC rank-10"),
    Metric("rank-20", description="CMC rank-20"),
    Metric("mAP", description="mean average precision over the ranked gallery images"),
    Metric("mINP", description="mean inverse negative penalty (AGW): matches / rank of last"),
)
IMAGE_CMC_METRICS = tuple(
    Metric(
        f"rank-{k}-image",
        description=f"image-level CMC rank-{k}: % of valid queries whose first true-match image "
        f"ranks within {k} (the standard CMC of AGW's eval_regdb; the official rank-{k} counts "
        "distinct identities)",
    )
    for k in RANKS
)
"""The image-level CMC beside a distinct-identity one (SYSU-MM01)."""
LEGACY_METRICS = frozenset({"rank-1", "rank-10", "rank-20", "mAP", "mINP"})
"""What the @1 ReID protocols reported when their first records were written."""


def legacy_metrics(metrics: Sequence[Metric]) -> tuple[Metric, ...]:
    """``metrics`` with those added after a protocol's first records marked optional, so that
    old records (without them) stay valid; new scores report them all."""
    return tuple(
        m if m.name in LEGACY_METRICS else dataclasses.replace(m, optional=True) for m in metrics
    )


REID_NPZ_KEYS = {
    "query_feat": "(Q, D) float query features (L2-normalised here; cosine distance)",
    "query_ids": "(Q,) int identity of each query image",
    "query_cams": "(Q,) int camera of each query image",
    "gallery_feat": "(G, D) float gallery features",
    "gallery_ids": "(G,) int identity of each gallery image",
    "gallery_cams": "(G,) int camera of each gallery image",
}


def all_finite(x: Any) -> bool:
    """No NaN or infinity in ``x`` (an array or a tensor). A finite sum proves it cheaply: any
    NaN or infinity makes a sum NaN or infinite, in any order of summation. The sum runs in
    ``x``'s own dtype (float32 and float64; half precision in float32): a float64 accumulation
    of float32 features costs ~15 times more (the conversion). A sum that overflows (huge
    finite values) is no proof either way; then the elementwise check decides."""
    if isinstance(x, torch.Tensor):
        if not (x.dtype.is_floating_point or x.dtype.is_complex):
            return True
        if x.numel() == 0:
            return True
        wide = x.dtype in (torch.float32, torch.float64) or x.dtype.is_complex
        if bool(torch.isfinite(x.sum(dtype=x.dtype if wide else torch.float32))):
            return True
        return bool(torch.isfinite(x).all())
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        acc = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        if x.size == 0 or np.isfinite(x.sum(dtype=acc)):
            return True
    return bool(np.isfinite(x).all())


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
        block_size: int | None = None,
        product: str = "auto",
    ) -> None:
        """``device``: where to compute (None: where the features are; NumPy arrays: the CPU).
        ``product``: the similarity products, ``"float64"``, ``"float32"`` (exact float64
        recount of near-ties) or ``"auto"`` (float32 on CUDA); every choice gives the same
        metrics (:mod:`mv2d_bench.leaderboards.reid_eval`)."""
        self.device = device
        """Where the ranking runs (None: where the features are; see :meth:`engine_device`)."""
        self.block_size = block_size
        self.product = product

    @staticmethod
    def as_numpy(x: Any) -> np.ndarray:
        """A NumPy copy of an array or (any device's) tensor."""
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

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
            if not all_finite(feat):
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
