"""Streaming, distributable metrics of the protocols (``Protocol.metric()``), on torchmetrics.

Each protocol's metric is a ``torchmetrics.Metric``: ``update(**arrays)`` per batch (keyword
names = the protocol's npz keys, plus the dataset-index keys of a cat-state protocol),
``compute()`` once, returning the protocol's :class:`~mv2d_bench.leaderboards.protocols.Score`.
States are declared with ``add_state(..., dist_reduce_fx="sum" | "cat")``, so torchmetrics syncs
them across processes in ``compute()`` (through :func:`gather.gather_uneven`).

- :class:`accuracy.AccuracyMetric`: correct / total sums (``mvc/accuracy@1``).
- :class:`items.ItemsMetric`: every item's arrays as ``cat`` states with its dataset index;
  ``compute()`` drops duplicate indices, restores dataset order and runs the protocol's exact
  whole-split engine (``Protocol.score_split``; the ReID protocols).
"""

from mv2d_bench.leaderboards.metrics.base import ProtocolMetric

__all__ = ["ProtocolMetric"]
