"""The Protocol contract: a versioned official evaluation.

A protocol has an id ``<benchmark>/<setting>@<version>``, the metrics it reports with their
direction and range, how many independent runs (seeds) a leaderboard entry needs, how many trials
one run is scored over (ten sampled galleries for SYSU-MM01, one otherwise), the npz keys that
``mv2d-bench score`` reads, and :meth:`score`, which computes the metrics exactly as the official
evaluation does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str = "max"  # "max": higher is better; "min": lower is better
    low: float = 0.0
    high: float = 100.0
    unit: str = "%"
    description: str = ""


@dataclass
class Score:
    """What :meth:`Protocol.score` returns: the run's metrics (the mean over its trials) and the
    metrics of each trial (a single entry when the protocol has one trial)."""

    metrics: dict[str, float]
    per_trial: list[dict[str, float]] = field(default_factory=list)


class Protocol:
    id: ClassVar[str] = ""
    benchmark: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    primary: ClassVar[str] = ""
    """The metric that ranks a leaderboard."""
    required_seeds: ClassVar[int] = 1
    """Independent runs a leaderboard entry needs before it is ranked."""
    trials: ClassVar[int] = 1
    """Trials one run is scored over (and averaged)."""
    npz_keys: ClassVar[dict[str, str]] = {}
    """Keys ``mv2d-bench score`` reads from the predictions file, with what each holds."""

    @property
    def version(self) -> int:
        return int(self.id.rsplit("@", 1)[1])

    @property
    def family_id(self) -> str:
        """The id without its version: two protocols compare only when these and versions match."""
        return self.id.rsplit("@", 1)[0]

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"protocol {self.id} has no metric {name!r}")

    def score(self, **arrays: np.ndarray) -> Score:
        raise NotImplementedError

    def score_npz(self, path: str) -> Score:
        """Score a predictions file holding :attr:`npz_keys`; a missing key names the file."""
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in self.npz_keys if k not in data.files]
            if missing:
                raise ValueError(
                    f"{path}: missing key(s) {', '.join(missing)} for protocol {self.id}; "
                    f"expected: {', '.join(self.npz_keys)} (found: {', '.join(data.files)})"
                )
            arrays: dict[str, Any] = {k: data[k] for k in self.npz_keys}
        return self.score(**arrays)
