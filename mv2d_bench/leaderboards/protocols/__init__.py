"""Official evaluation protocols, registered in the ``mv2d_bench.protocols`` entry-point group."""

from __future__ import annotations

from mv2d_bench.leaderboards.protocols.base import Metric, Protocol, Score
from mv2d_bench.registry import registry

__all__ = ["Metric", "Protocol", "Score", "get"]


def get(protocol_id: str) -> Protocol:
    """An instance of the protocol registered under ``protocol_id`` (e.g. 'mvc/accuracy@1')."""
    cls = registry("protocols").load(protocol_id)
    return cls()
