"""Benchmark loaders, registered in the ``mv2d_bench.benchmarks`` entry-point group."""

from __future__ import annotations

from typing import Any

from mv2d_bench.loaders.base import Benchmark, DataCard, DataError, DataNotFoundError
from mv2d_bench.registry import registry

__all__ = ["Benchmark", "DataCard", "DataError", "DataNotFoundError", "create", "get"]


def get(name: str) -> type[Benchmark]:
    return registry("benchmarks").load(name)


def create(name: str, root: Any = None, **options: Any) -> Benchmark:
    """Open benchmark ``name`` on its data root (``root``, then ``$MV2D_DATA``, then default)."""
    return get(name)(root=root, **options)
